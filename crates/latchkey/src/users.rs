//! The rules a user account must meet, wherever it is created or changed: the config file's
//! `[[users]]`, the CLI (`latchkey users …`), and later the admin API and the account page;
//! and how users are imported from other systems.

use serde::{Deserialize, Serialize};

use crate::model::User;
use crate::password::{self, HashKind};

/// A username is what a person types: non-empty and printable.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    if username.trim().is_empty() || username.chars().any(char::is_control) {
        return Err("must be non-empty and printable");
    }
    Ok(())
}

/// A password is anything but empty (the config's static users; new passwords meet the
/// [`PasswordPolicy`]).
pub fn check_password(password: &str) -> Result<(), &'static str> {
    if password.is_empty() {
        return Err("must not be empty");
    }
    Ok(())
}

/// What a new password must meet (`[passwords]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// The fewest characters (NIST SP 800-63B §3.1.1.2 asks for at least 8, 15 without a
    /// second factor; latchkey's default is 12).
    pub min_length: usize,
    /// Refuse passwords found among the most common ones, or guessed as quickly (below).
    pub refuse_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_length: 12, refuse_common: true }
    }
}

/// The longest prefix the common-password check reads: its cost grows with the length, and
/// a password this long is past any list.
const COMMON_CHECK_CHARS: usize = 100;

impl PasswordPolicy {
    /// Whether `password` may be set for `username`; else what to do instead. The common
    /// check is zxcvbn's (Dropbox's estimator, with the 30,000 most common passwords, English
    /// words and names, keyboard patterns, dates, repeats and l33t spellings, and the
    /// username): a password it expects to be guessed in fewer than 10^8 tries (score below
    /// 3) is refused (NIST SP 800-63B §3.1.1.2: compare against commonly used passwords).
    pub fn check(&self, password: &str, username: &str) -> Result<(), String> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(format!(
                "the password has {length} characters; use at least {} (a passphrase of a few words is easy to type and hard to guess)",
                self.min_length
            ));
        }
        if self.refuse_common {
            let prefix: String = password.chars().take(COMMON_CHECK_CHARS).collect();
            let estimate = zxcvbn::zxcvbn(&prefix, &[username]);
            if (estimate.score() as u8) < 3 {
                return Err(
                    "the password is too common or too easy to guess (a well-known password, a word with small changes, a keyboard pattern, or the username): choose another, e.g. a few unrelated words".into(),
                );
            }
        }
        Ok(())
    }
}

/// A user as scripts and the admin API see it: the `[[users]]` config keys (never the
/// password), the subject, and the account's state.
#[derive(Debug, Serialize)]
pub struct UserView<'a> {
    username: &'a str,
    /// The `sub` claim.
    sub: &'a str,
    email: Option<&'a str>,
    email_verified: bool,
    name: Option<&'a str>,
    disabled: bool,
}

impl<'a> UserView<'a> {
    /// The view of a stored user.
    pub fn of(user: &'a User) -> Self {
        UserView {
            username: &user.username,
            sub: &user.id,
            email: user.email.as_deref(),
            email_verified: user.email_verified,
            name: user.name.as_deref(),
            disabled: user.disabled,
        }
    }
}

/// One line of an import file (JSON lines): a user with the hash another system stored, or a
/// plaintext password when the import allows it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLine {
    /// Login name.
    pub username: String,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the email is verified (default false: the other system's word is needed).
    #[serde(default)]
    pub email_verified: bool,
    /// Import the account disabled.
    #[serde(default)]
    pub disabled: bool,
    /// argon2id, bcrypt or scrypt, as [`HashKind`] reads them.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// A password in plaintext (only with `--plaintext`; hashed on import).
    #[serde(default)]
    pub password: Option<String>,
}

/// What one import line needs: the stored hash as given, or a password to hash.
#[derive(Debug)]
pub enum ImportedPassword {
    /// A hash another system made, verified at sign-in and then replaced by latchkey's.
    Hash(String),
    /// A plaintext password, to hash before storing.
    Plain(String),
}

/// Reads and checks one import line (`number` counts from 1, for the message).
pub fn parse_import_line(
    number: usize,
    line: &str,
    allow_plaintext: bool,
) -> Result<(ImportLine, ImportedPassword), String> {
    let at = |problem: String| format!("line {number}: {problem}");
    let entry: ImportLine = serde_json::from_str(line).map_err(|error| {
        at(format!(
            "{error}; each line is one JSON object with username, email, name, email_verified, disabled and password_hash"
        ))
    })?;
    check_username(&entry.username).map_err(|problem| at(format!("username {problem}")))?;
    let password = match (&entry.password_hash, &entry.password) {
        (Some(_), Some(_)) => return Err(at("give password_hash or password, not both".into())),
        (None, None) => return Err(at("password_hash is missing".into())),
        (Some(hash), None) => {
            match HashKind::of(hash).map_err(|problem| at(format!("password_hash: {problem}")))? {
                HashKind::Sha256 => {
                    return Err(at("password_hash: a sha256: hash is for generated client secrets, not passwords".into()));
                }
                _ => ImportedPassword::Hash(hash.clone()),
            }
        }
        (None, Some(plain)) if allow_plaintext => {
            check_password(plain).map_err(|problem| at(format!("password {problem}")))?;
            ImportedPassword::Plain(plain.clone())
        }
        (None, Some(_)) => {
            return Err(at(
                "a plaintext password is imported only with --plaintext (better: export the hashes)".into(),
            ));
        }
    };
    Ok((entry, password))
}

/// Whether a hash is latchkey's own at its current parameters (else it is upgraded at the
/// next successful sign-in).
pub fn hash_is_current(hash: &str) -> bool {
    !password::needs_upgrade(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_printable_and_passwords_not_empty() {
        assert!(check_username("alice").is_ok() && check_username("Alice Example").is_ok());
        for bad in ["", "  ", "ali\nce", "a\u{7}"] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("x").is_ok() && check_password("").is_err());
    }

    #[test]
    fn the_policy_refuses_short_common_and_guessable_passwords() {
        let policy = PasswordPolicy::default();
        assert!(policy.check("short", "alice").unwrap_err().contains("at least 12"));
        for common in
            ["password1234", "123456789012", "qwertyuiop123", "Passw0rd1234", "alicealice12"]
        {
            let refused = policy.check(common, "alice");
            assert!(refused.is_err(), "{common:?} was accepted");
        }
        for good in ["correct horse battery staple", "plum-vector-lagoon-87"] {
            assert_eq!(policy.check(good, "alice"), Ok(()), "{good:?}");
        }
        let lenient = PasswordPolicy { min_length: 4, refuse_common: false };
        assert_eq!(lenient.check("password", "alice"), Ok(()));
    }

    #[test]
    fn import_lines_name_their_problem_and_line() {
        let bcrypt = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";
        let (entry, password) = parse_import_line(
            1,
            &format!(
                r#"{{"username":"bob","email":"bob@example.com","password_hash":"{bcrypt}"}}"#
            ),
            false,
        )
        .unwrap();
        assert_eq!(entry.username, "bob");
        assert!(matches!(password, ImportedPassword::Hash(h) if h == bcrypt));
        let error = |line: &str, plaintext| parse_import_line(7, line, plaintext).unwrap_err();
        assert!(
            error(r#"{"username":"bob"}"#, false).starts_with("line 7: password_hash is missing")
        );
        assert!(error(r#"{"username":"bob","password":"pw"}"#, false).contains("--plaintext"));
        assert!(parse_import_line(7, r#"{"username":"bob","password":"pw"}"#, true).is_ok());
        assert!(
            error(r#"{"username":"bob","password_hash":"$1$abc$def"}"#, false)
                .contains("not a hash latchkey reads")
        );
        assert!(
            error(r#"{"username":"bob","groups":[]}"#, false).contains("unknown field `groups`")
        );
        assert!(error("not json", false).starts_with("line 7: "));
    }
}
