// git2fa: the browser's half of a security key or passkey (WebAuthn).
//
// A form with a data-webauthn attribute carries the options the server
// made for one ceremony (JSON, binary fields in unpadded base64url). When
// the form is submitted, this script asks the browser to create a key
// (options with a user) or to use one, puts the key's answer in the form's
// field "credential" (or "error:" and what the browser reported), and
// sends the form. Everything else on the page works without this script.
"use strict";

(function () {
  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withBinaryIds(list) {
    return list.map(function (credential) {
      return Object.assign({}, credential, { id: toBytes(credential.id) });
    });
  }

  function options(json) {
    var publicKey = JSON.parse(json).publicKey;
    publicKey.challenge = toBytes(publicKey.challenge);
    if (publicKey.user) {
      publicKey.user = Object.assign({}, publicKey.user, { id: toBytes(publicKey.user.id) });
    }
    if (publicKey.excludeCredentials) {
      publicKey.excludeCredentials = withBinaryIds(publicKey.excludeCredentials);
    }
    if (publicKey.allowCredentials) {
      publicKey.allowCredentials = withBinaryIds(publicKey.allowCredentials);
    }
    return publicKey;
  }

  function answer(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults(),
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      out.response.attestationObject = toText(response.attestationObject);
      if (response.getTransports) {
        out.response.transports = response.getTransports();
      }
    } else {
      out.response.authenticatorData = toText(response.authenticatorData);
      out.response.signature = toText(response.signature);
      if (response.userHandle) {
        out.response.userHandle = toText(response.userHandle);
      }
    }
    return out;
  }

  function ceremony(publicKey) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      return Promise.reject(new Error("this browser offers no security keys to this page"));
    }
    return publicKey.user
      ? navigator.credentials.create({ publicKey: publicKey })
      : navigator.credentials.get({ publicKey: publicKey });
  }

  function attach(form) {
    var field = form.querySelector("input[name=credential]");
    var busy = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      var started;
      try {
        started = ceremony(options(form.getAttribute("data-webauthn")));
      } catch (error) {
        started = Promise.reject(error);
      }
      started
        .then(function (credential) {
          field.value = JSON.stringify(answer(credential));
        }, function (error) {
          field.value = "error:" + (error.name || "Error") + ": " + (error.message || "");
        })
        .then(function () {
          form.submit();
        });
    });
  }

  document.querySelectorAll("form[data-webauthn]").forEach(attach);
})();
