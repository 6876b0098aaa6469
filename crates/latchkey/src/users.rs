//! The rules a user account must meet, wherever it is created: the config file's `[[users]]`,
//! `latchkey users add`, and later the admin API.

/// A username is what a person types: non-empty and printable.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    if username.trim().is_empty() || username.chars().any(char::is_control) {
        return Err("must be non-empty and printable");
    }
    Ok(())
}

/// A password is anything but empty.
pub fn check_password(password: &str) -> Result<(), &'static str> {
    if password.is_empty() {
        return Err("must not be empty");
    }
    Ok(())
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
}
