//! The `USER:PASSWORD@` of a server URL, taken apart the same way for every bus that is given
//! a URL (RabbitMQ, NATS, MQTT, Redis, HTTP): the password is a secret the caller keeps apart
//! (keyring), and what a connection stores is the URL without it. Buses differ only in what a
//! lone user means (NATS: a token, itself a secret) and whether the user stays in the URL.

use crate::BusError;
use percent_encoding::percent_decode_str;

/// A URL's parts around its userinfo. `user` and `password` are percent-decoded; `host` is
/// the authority after the `@` (`HOST[:PORT]`), `rest` what follows it (`/DB?...`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Userinfo {
    pub scheme: String,
    /// The user as written (still percent-encoded), for a URL that keeps it.
    user_written: Option<String>,
    pub user: Option<String>,
    /// `Some("")` for `USER:@HOST`: the URL said there is a password, an empty one.
    pub password: Option<String>,
    pub host: String,
    pub rest: String,
}

impl std::fmt::Debug for Userinfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Userinfo")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("rest", &self.rest)
            .finish()
    }
}

impl Userinfo {
    /// `scheme://HOST...`: the URL with no userinfo at all.
    pub fn bare(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.rest)
    }

    /// `scheme://USER@HOST...`: the user kept as written, the password gone.
    pub fn with_user(&self) -> String {
        match &self.user_written {
            Some(u) => format!("{}://{u}@{}{}", self.scheme, self.host, self.rest),
            None => self.bare(),
        }
    }
}

/// Splits `url`; `None` when it has no `scheme://`. An error only when the user or password
/// does not decode to UTF-8.
pub(crate) fn split(url: &str) -> Result<Option<Userinfo>, BusError> {
    let Some((scheme, after)) = url.split_once("://") else {
        return Ok(None);
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    // `USER:PASS/WORD@HOST`: a password with an unencoded `/`, `?` or `#` would read as a host
    // and a path, and the password be kept in the URL. Refused without repeating it.
    if !authority.contains('@')
        && rest
            .find('@')
            .is_some_and(|at| after[..end + at].contains(':'))
    {
        return Err(BusError::Invalid(
            "--url: a user or password holding '/', '?', '#' or '@' must be percent-encoded \
             (%2F, %3F, %23, %40)"
                .into(),
        ));
    }
    let (info, host) = match authority.rsplit_once('@') {
        Some((i, h)) => (Some(i), h),
        None => (None, authority),
    };
    let decode = |t: &str| {
        percent_decode_str(t)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| BusError::Invalid("--url: the user or password is not UTF-8".into()))
    };
    let (user_written, password) = match info {
        None => (None, None),
        Some(i) => match i.split_once(':') {
            Some((u, p)) => (Some(u), Some(decode(p)?)),
            None => (Some(i), None),
        },
    };
    let user_written = user_written.filter(|u| !u.is_empty());
    Ok(Some(Userinfo {
        scheme: scheme.to_string(),
        user: user_written.map(decode).transpose()?,
        user_written: user_written.map(str::to_string),
        password,
        host: host.to_string(),
        rest: rest.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_password_come_apart_decoded_and_the_rest_is_kept() {
        let u = split("redis://al%40ce:s%3Acret@h:6379/2?x=1")
            .unwrap()
            .unwrap();
        assert_eq!(u.user.as_deref(), Some("al@ce"));
        assert_eq!(u.password.as_deref(), Some("s:cret"));
        assert_eq!((u.host.as_str(), u.rest.as_str()), ("h:6379", "/2?x=1"));
        assert_eq!(u.with_user(), "redis://al%40ce@h:6379/2?x=1");
        assert_eq!(u.bare(), "redis://h:6379/2?x=1");
    }

    #[test]
    fn what_is_missing_stays_missing() {
        let lone = split("nats://tok@h:4222").unwrap().unwrap();
        assert_eq!((lone.user.as_deref(), lone.password), (Some("tok"), None));
        let empty_user = split("rediss://:pw@h").unwrap().unwrap();
        assert_eq!(empty_user.user, None);
        assert_eq!(empty_user.password.as_deref(), Some("pw"));
        assert_eq!(empty_user.with_user(), "rediss://h");
        let none = split("mqtt://h:1883").unwrap().unwrap();
        assert_eq!((none.user, none.password), (None, None));
        // An `@` after the authority (in a path or query) is not userinfo.
        let path = split("http://h/a@b").unwrap().unwrap();
        assert_eq!((path.host.as_str(), path.user), ("h", None));
        assert_eq!(split("h:1").unwrap(), None);
        assert!(split("redis://u:%ff@h").is_err());
        // A password with a raw `/` is refused, and the error does not repeat it.
        let e = split("redis://default:Ab/9+x==@cache:6379/0").unwrap_err();
        assert!(!e.to_string().contains("Ab/9"), "{e}");
        assert!(split("https://u:12/x@hook/in").is_err());
        assert!(!format!("{:?}", split("redis://u:pw@h").unwrap().unwrap()).contains("pw"));
    }
}
