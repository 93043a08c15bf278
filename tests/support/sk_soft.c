/*
 * A software security key for git2fa's tests.
 *
 * OpenSSH loads security keys (the `sk-` key types) through a "middleware"
 * library named by SSH_SK_PROVIDER or `-w`/SecurityKeyProvider, whose API is
 * described in OpenSSH's sk-api.h: sk_api_version, sk_enroll, sk_sign and
 * sk_load_resident_keys. This one answers for an Ed25519 key held in
 * software: the key handle OpenSSH stores in the private key file
 * (`ssh-keygen -t ed25519-sk`) is the key's 32-byte seed, so the file holds
 * the key. A real authenticator sets the flags of each signature by what
 * happened (0x01: a person touched it, 0x04: they also gave its PIN or a
 * biometric); this one sets what the test asks for in GIT2FA_SK_FLAGS
 * (a number, 0x05 for both), by default 0x01, and 0x05 when OpenSSH passed
 * a PIN; for a key made with `-O verify-required` it asks OpenSSH for the
 * PIN first (SSH_SK_ERR_PIN_REQUIRED), which then prompts through
 * SSH_ASKPASS. The PIN itself is not checked. Never use it outside tests: anyone who reads the key file signs.
 *
 * The structures are those of the API's version 10 (0x000a0000), which
 * OpenSSH 8.9 and later load (Debian 12 has 9.2); version 10 added the
 * enrolment's `flags`.
 *
 * The signed message is what PROTOCOL.u2f in OpenSSH describes for an
 * Ed25519 security key: SHA-256(application) || flags || counter (4 bytes,
 * big-endian) || SHA-256(data), signed with Ed25519.
 *
 * Built by the tests with: cc -shared -fPIC -o libsk_soft.so sk_soft.c -lcrypto
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* The API's version, flags, algorithms and errors (sk-api.h). */
#define API_VERSION 0x000a0000
#define ALG_ED25519 0x01
#define FLAG_PRESENCE 0x01
#define FLAG_VERIFIED 0x04
#define ERR_GENERAL -1
#define ERR_UNSUPPORTED -2
#define ERR_PIN_REQUIRED -3

struct sk_enroll_response {
	uint8_t flags;
	uint8_t *public_key;
	size_t public_key_len;
	uint8_t *key_handle;
	size_t key_handle_len;
	uint8_t *signature;
	size_t signature_len;
	uint8_t *attestation_cert;
	size_t attestation_cert_len;
	uint8_t *authdata;
	size_t authdata_len;
};

struct sk_sign_response {
	uint8_t flags;
	uint32_t counter;
	uint8_t *sig_r;
	size_t sig_r_len;
	uint8_t *sig_s;
	size_t sig_s_len;
};

struct sk_resident_key;
struct sk_option;

uint32_t sk_api_version(void);
int sk_enroll(uint32_t alg, const uint8_t *challenge, size_t challenge_len,
    const char *application, uint8_t flags, const char *pin,
    struct sk_option **options, struct sk_enroll_response **enroll_response);
int sk_sign(uint32_t alg, const uint8_t *data, size_t data_len,
    const char *application, const uint8_t *key_handle, size_t key_handle_len,
    uint8_t flags, const char *pin, struct sk_option **options,
    struct sk_sign_response **sign_response);
int sk_load_resident_keys(const char *pin, struct sk_option **options,
    struct sk_resident_key ***rks, size_t *nrks);

uint32_t
sk_api_version(void)
{
	return API_VERSION;
}

static EVP_PKEY *
key_of(const uint8_t *seed)
{
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

static int
sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;
	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int
sk_enroll(uint32_t alg, const uint8_t *challenge, size_t challenge_len,
    const char *application, uint8_t flags, const char *pin,
    struct sk_option **options, struct sk_enroll_response **enroll_response)
{
	struct sk_enroll_response *r;
	EVP_PKEY *key;
	size_t len = 32;

	(void)challenge; (void)challenge_len; (void)application;
	(void)pin; (void)options;
	if (alg != ALG_ED25519)
		return ERR_UNSUPPORTED;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return ERR_GENERAL;
	r->key_handle = malloc(32);
	r->public_key = malloc(32);
	if (r->key_handle == NULL || r->public_key == NULL ||
	    RAND_bytes(r->key_handle, 32) != 1 ||
	    (key = key_of(r->key_handle)) == NULL)
		goto fail;
	r->key_handle_len = 32;
	if (EVP_PKEY_get_raw_public_key(key, r->public_key, &len) != 1 ||
	    len != 32) {
		EVP_PKEY_free(key);
		goto fail;
	}
	EVP_PKEY_free(key);
	r->public_key_len = 32;
	r->flags = flags;
	*enroll_response = r;
	return 0;
fail:
	free(r->key_handle);
	free(r->public_key);
	free(r);
	return ERR_GENERAL;
}

int
sk_sign(uint32_t alg, const uint8_t *data, size_t data_len,
    const char *application, const uint8_t *key_handle, size_t key_handle_len,
    uint8_t flags, const char *pin, struct sk_option **options,
    struct sk_sign_response **sign_response)
{
	struct sk_sign_response *r;
	EVP_PKEY *key;
	EVP_MD_CTX *ctx;
	uint8_t message[32 + 1 + 4 + 32];
	uint8_t signed_flags;
	uint32_t counter = (uint32_t)time(NULL);
	const char *asked = getenv("GIT2FA_SK_FLAGS");
	size_t sig_len = 64;
	int ok;

	(void)flags; (void)options;
	if (alg != ALG_ED25519 || key_handle_len != 32)
		return ERR_UNSUPPORTED;
	if (asked != NULL && *asked != '\0')
		signed_flags = (uint8_t)strtoul(asked, NULL, 0);
	else if ((flags & FLAG_VERIFIED) && (pin == NULL || *pin == '\0'))
		/* As an authenticator does: OpenSSH then asks for the PIN. */
		return ERR_PIN_REQUIRED;
	else
		signed_flags = FLAG_PRESENCE |
		    (pin != NULL && *pin != '\0' ? FLAG_VERIFIED : 0);
	if (sha256(application, strlen(application), message) != 0 ||
	    sha256(data, data_len, message + 37) != 0)
		return ERR_GENERAL;
	message[32] = signed_flags;
	message[33] = (uint8_t)(counter >> 24);
	message[34] = (uint8_t)(counter >> 16);
	message[35] = (uint8_t)(counter >> 8);
	message[36] = (uint8_t)counter;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return ERR_GENERAL;
	if ((r->sig_r = malloc(64)) == NULL || (key = key_of(key_handle)) == NULL) {
		free(r->sig_r);
		free(r);
		return ERR_GENERAL;
	}
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, r->sig_r, &sig_len, message, sizeof(message)) == 1 &&
	    sig_len == 64;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	if (!ok) {
		free(r->sig_r);
		free(r);
		return ERR_GENERAL;
	}
	r->sig_r_len = 64;
	r->flags = signed_flags;
	r->counter = counter;
	*sign_response = r;
	return 0;
}

int
sk_load_resident_keys(const char *pin, struct sk_option **options,
    struct sk_resident_key ***rks, size_t *nrks)
{
	(void)pin; (void)options; (void)rks; (void)nrks;
	return ERR_UNSUPPORTED;
}
