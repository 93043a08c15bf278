use super::*;
use totp_rs::Algorithm;

// RFC 6238 Appendix B: the seeds are the ASCII string "12345678901234567890"
// repeated to the hash's size (20, 32 and 64 bytes); codes have 8 digits.
fn seed(len: usize) -> Vec<u8> {
    b"1234567890".iter().copied().cycle().take(len).collect()
}

const VECTORS: &[(u64, &str, &str, &str)] = &[
    // (time, SHA-1, SHA-256, SHA-512)
    (59, "94287082", "46119246", "90693936"),
    (1_111_111_109, "07081804", "68084774", "25091201"),
    (1_111_111_111, "14050471", "67062674", "99943326"),
    (1_234_567_890, "89005924", "91819424", "93441116"),
    (2_000_000_000, "69279037", "90698825", "38618901"),
    (20_000_000_000, "65353130", "77737706", "47863826"),
];

#[test]
fn rfc6238_appendix_b_sha1() {
    for (time, sha1, _, _) in VECTORS {
        assert_eq!(
            code_with(Algorithm::SHA1, 8, &seed(20), *time).unwrap(),
            *sha1,
            "t={time}"
        );
    }
}

#[test]
fn rfc6238_appendix_b_sha256() {
    for (time, _, sha256, _) in VECTORS {
        assert_eq!(
            code_with(Algorithm::SHA256, 8, &seed(32), *time).unwrap(),
            *sha256,
            "t={time}"
        );
    }
}

#[test]
fn rfc6238_appendix_b_sha512() {
    for (time, _, _, sha512) in VECTORS {
        assert_eq!(
            code_with(Algorithm::SHA512, 8, &seed(64), *time).unwrap(),
            *sha512,
            "t={time}"
        );
    }
}

#[test]
fn six_digit_codes_are_the_low_digits() {
    // RFC 4226 truncation: the 6-digit code is the 8-digit one mod 10^6.
    assert_eq!(code_at(&seed(20), 59), "287082");
    assert_eq!(code_at(&seed(20), 1_111_111_109), "081804");
}

#[test]
fn codes_match_within_skew_only() {
    let secret = seed(20);
    let now = 1_111_111_111;
    let step = step_of(now);
    let code = |s: i64| code_at(&secret, (s * 30) as u64);
    assert_eq!(matching_step(&secret, now, 1, &code(step)), Some(step));
    assert_eq!(
        matching_step(&secret, now, 1, &code(step - 1)),
        Some(step - 1)
    );
    assert_eq!(
        matching_step(&secret, now, 1, &code(step + 1)),
        Some(step + 1)
    );
    assert_eq!(matching_step(&secret, now, 1, &code(step - 2)), None);
    assert_eq!(matching_step(&secret, now, 0, &code(step - 1)), None);
    assert_eq!(
        matching_step(&secret, now, 2, &code(step - 2)),
        Some(step - 2)
    );
    let spaced = format!("{} {}", &code(step)[..3], &code(step)[3..]);
    assert_eq!(matching_step(&secret, now, 1, &spaced), Some(step));
    for bad in ["", "12345", "1234567", "abcdef", "12345x"] {
        assert_eq!(matching_step(&secret, now, 1, bad), None, "{bad}");
    }
}

#[test]
fn otpauth_uri_round_trips_the_secret() {
    let secret = seed(20);
    let uri = otpauth_uri("Git Host", "alice", &secret);
    assert_eq!(
        uri,
        "otpauth://totp/Git%20Host:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Git%20Host&algorithm=SHA1&digits=6&period=30"
    );
    assert_eq!(secret_from_uri(&uri).unwrap(), secret);
}
