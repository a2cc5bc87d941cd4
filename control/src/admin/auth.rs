//! Bearer-token check for the admin API.

use subtle::ConstantTimeEq;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this admin API needs a bearer token: send `Authorization: Bearer <admin.token>`")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    Malformed,
    #[error("wrong admin token")]
    Wrong,
}

/// Checks an `Authorization` header value against the configured token.
/// `expected: None` means the API is open (loopback without a token).
pub fn check(expected: Option<&str>, header: Option<&[u8]>) -> Result<(), AuthError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let header = header.ok_or(AuthError::Missing)?;
    let presented = bearer_token(header).ok_or(AuthError::Malformed)?;
    // A plain `==` stops at the first differing byte, which lets a client on
    // the network guess the token byte by byte from response times.
    if bool::from(presented.ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::Wrong)
    }
}

/// The token of a `Bearer` credential; the scheme is case-insensitive
/// (RFC 7235 §2.1).
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_api_accepts_anything() {
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(None, Some(b"garbage")), Ok(()));
    }

    #[test]
    fn token_is_required_and_compared() {
        let t = Some("s3cret");
        assert_eq!(check(t, None), Err(AuthError::Missing));
        assert_eq!(check(t, Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(check(t, Some(b"bearer   s3cret ")), Ok(()));
        assert_eq!(check(t, Some(b"Bearer s3cre")), Err(AuthError::Wrong));
        assert_eq!(check(t, Some(b"Bearer s3cretX")), Err(AuthError::Wrong));
        assert_eq!(check(t, Some(b"Basic czNjcmV0")), Err(AuthError::Malformed));
        assert_eq!(check(t, Some(b"Bearer")), Err(AuthError::Malformed));
        assert_eq!(check(t, Some(b"Bearers3cret")), Err(AuthError::Malformed));
    }
}
