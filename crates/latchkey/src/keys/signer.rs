//! Key generation, JWK export and JWS signing with aws-lc-rs.
//!
//! Key pairs are parsed once and kept: `jsonwebtoken::encode` re-parses the private key on every
//! call, which halves ES256 throughput. The JWS compact serialization itself (RFC 7515 §7.1) is
//! base64url of JSON around the signature bytes from aws-lc-rs, and is tested against
//! `jsonwebtoken` as an independent verifier.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_resource::Jwk;
use serde::Serialize;

use crate::model::SigningAlg;

/// Errors of key handling. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Generating a new key failed.
    #[error("could not generate a {0} key")]
    Generate(SigningAlg),
    /// A stored private key did not parse.
    #[error("stored {alg} key {kid} is not a valid PKCS#8 key")]
    Parse {
        /// The key id.
        kid: String,
        /// The algorithm it was stored for.
        alg: SigningAlg,
    },
    /// Signing failed.
    #[error("signing with key {0} failed")]
    Sign(String),
    /// The claims could not be serialized.
    #[error("could not serialize token claims: {0}")]
    Serialize(String),
}

/// A private key pair ready to sign, with its id.
pub struct Signer {
    kid: String,
    pair: Pair,
}

enum Pair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).field("alg", &self.alg()).finish()
    }
}

/// A new private key in PKCS#8 v1 DER.
pub fn generate(alg: SigningAlg) -> Result<Vec<u8>, KeyError> {
    let failed = |_| KeyError::Generate(alg);
    match alg {
        SigningAlg::ES256 => {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(failed)?;
            Ok(pkcs8.as_ref().to_vec())
        }
        SigningAlg::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
            let der = pair.as_der().map_err(failed)?;
            Ok(der.as_ref().to_vec())
        }
        SigningAlg::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(failed)?;
            Ok(pkcs8.as_ref().to_vec())
        }
    }
}

impl Signer {
    /// Parses a PKCS#8 private key once.
    pub fn from_pkcs8(kid: &str, alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let invalid = |_| KeyError::Parse { kid: kid.to_owned(), alg };
        let pair = match alg {
            SigningAlg::ES256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(invalid)?,
            ),
            SigningAlg::RS256 => Pair::Rs256(RsaKeyPair::from_pkcs8(pkcs8).map_err(invalid)?),
            SigningAlg::EdDSA => Pair::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(invalid)?),
        };
        Ok(Signer { kid: kid.to_owned(), pair })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SigningAlg {
        match self.pair {
            Pair::Es256(_) => SigningAlg::ES256,
            Pair::Rs256(_) => SigningAlg::RS256,
            Pair::Ed25519(_) => SigningAlg::EdDSA,
        }
    }

    /// The public half as a JWK with `kid`, `use` and `alg`, and nothing private.
    pub fn public_jwk(&self) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            kid: self.kid.clone(),
            key_use: Some("sig".into()),
            alg: Some(self.alg().as_str().into()),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        };
        match &self.pair {
            Pair::Es256(pair) => {
                // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
                let point = pair.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(URL_SAFE_NO_PAD.encode(&point[1..33]));
                jwk.y = Some(URL_SAFE_NO_PAD.encode(&point[33..65]));
            }
            Pair::Ed25519(pair) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()));
            }
            Pair::Rs256(pair) => {
                let public = pair.public_key();
                jwk.kty = "RSA".into();
                jwk.n = Some(
                    URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                );
                jwk.e = Some(
                    URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                );
            }
        }
        jwk
    }

    /// A JWS compact serialization of `claims` with header `{alg, typ, kid}`.
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = Header { alg: self.alg().as_str(), typ, kid: &self.kid };
        let mut token = base64_json(&header)?;
        token.push('.');
        token.push_str(&base64_json(claims)?);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Sign(self.kid.clone());
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es256(pair) => Ok(pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature).map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

fn base64_json(value: &impl Serialize) -> Result<String, KeyError> {
    let json = serde_json::to_vec(value).map_err(|error| KeyError::Serialize(error.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    fn claims() -> Claims {
        Claims { sub: "alice".into(), exp: 4_000_000_000 }
    }

    fn verify_with_jsonwebtoken(alg: SigningAlg, expected: Algorithm) {
        let pkcs8 = generate(alg).unwrap();
        let signer = Signer::from_pkcs8("k1", alg, &pkcs8).unwrap();
        let token = signer.sign_jwt("at+jwt", &claims()).unwrap();

        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, expected);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));

        // The published JWK, read by an independent JOSE library, verifies the token.
        let jwk_json = serde_json::to_string(&signer.public_jwk()).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&jwk_json).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(expected);
        validation.validate_aud = false;
        let decoded = decode::<Claims>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims, claims());

        // A tampered payload does not verify.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","exp":4000000000}"#);
        parts[1] = &forged;
        assert!(decode::<Claims>(&parts.join("."), &key, &validation).is_err());
    }

    #[test]
    fn es256_tokens_verify_with_an_independent_library() {
        verify_with_jsonwebtoken(SigningAlg::ES256, Algorithm::ES256);
    }

    #[test]
    fn rs256_tokens_verify_with_an_independent_library() {
        verify_with_jsonwebtoken(SigningAlg::RS256, Algorithm::RS256);
    }

    #[test]
    fn eddsa_tokens_verify_with_an_independent_library() {
        verify_with_jsonwebtoken(SigningAlg::EdDSA, Algorithm::EdDSA);
    }

    #[test]
    fn public_jwk_has_no_private_parameters() {
        for alg in [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA] {
            let signer = Signer::from_pkcs8("k", alg, &generate(alg).unwrap()).unwrap();
            let json = serde_json::to_value(signer.public_jwk()).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(json.get(private).is_none(), "{alg} JWK publishes {private}");
            }
            assert_eq!(json["use"], "sig");
            assert_eq!(json["alg"], alg.as_str());
        }
    }

    #[test]
    fn garbage_is_not_a_key() {
        let error = Signer::from_pkcs8("bad", SigningAlg::ES256, b"not a key").unwrap_err();
        assert!(error.to_string().contains("bad"));
    }
}
