//! The authorization endpoint (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2).
//!
//! Validation runs in two stages. Until the client and its redirect URI are known good, an
//! error must not redirect anywhere (RFC 6749 §4.1.2.1): the user sees an error page. After
//! that, errors go back to the client's redirect URI.

use super::audience::{self, Target};
use super::params::Params;
use super::{ErrorCode, OAuthError, pkce, redirect_uri};
use crate::model::scope::Scopes;
use crate::model::{Client, GrantType, Resource, Session};

/// Longest `state` or `nonce` accepted; longer values are refused rather than stored.
const MAX_ECHO_LEN: usize = 2048;

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: Client,
    /// Where to send the response: the registered URI that matched.
    pub redirect_uri: String,
    /// The `redirect_uri` parameter as given, `None` when omitted (compared at the token
    /// endpoint, RFC 6749 §4.1.3).
    pub redirect_uri_param: Option<String>,
    /// Echoed unchanged.
    pub state: Option<String>,
    /// Scopes and audience to grant.
    pub target: Target,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// What the client asked the user to be shown.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// Pre-fills the username.
    pub login_hint: Option<String>,
    /// An id_token this server issued, naming the user the client expects (OIDC Core
    /// §3.1.2.1); verified by the caller, who has the keys.
    pub id_token_hint: Option<String>,
}

/// Why a request cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The client or redirect URI does not check out: show this message, never redirect.
    NoRedirect(String),
    /// Send the error to the client's redirect URI.
    Redirect {
        /// Where.
        redirect_uri: String,
        /// The client's `state`.
        state: Option<String>,
        /// What.
        error: OAuthError,
    },
}

/// The `client_id` parameter, required and single, before anything else is looked at.
pub fn client_id(params: &Params) -> Result<&str, RequestError> {
    match params.get("client_id") {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(RequestError::NoRedirect(
            "The request has no client_id. The application that sent you here is misconfigured."
                .into(),
        )),
        Err(_) => Err(RequestError::NoRedirect("The request has more than one client_id.".into())),
    }
}

/// Validates a request for a client looked up by [`client_id`] (`None`: unknown).
pub fn validate(
    params: &Params,
    client: Option<Client>,
    resources: &[Resource],
) -> Result<AuthorizationRequest, RequestError> {
    let Some(client) = client else {
        return Err(RequestError::NoRedirect(
            "Unknown client_id: no application is registered under this id.".into(),
        ));
    };
    let redirect_uri_param = params.get("redirect_uri").map_err(|_| {
        RequestError::NoRedirect("The request has more than one redirect_uri.".into())
    })?;
    let redirect_uri = match redirect_uri_param {
        // The response goes to the URI as given: for a native loopback match it carries the
        // app's port.
        Some(given) => redirect_uri::find_match(&client.redirect_uris, given, client.application_type)
            .map(|_| given.to_owned())
            .ok_or_else(|| {
                RequestError::NoRedirect(format!(
                    "The redirect_uri {given:?} is not registered for this application. Registered redirect URIs must match exactly, character for character."
                ))
            })?,
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(RequestError::NoRedirect(
                "The request has no redirect_uri, and the application registered several: it must say which one.".into(),
            ));
        }
    };
    // From here on errors go back to the client.
    let state = params.get("state").ok().flatten().map(str::to_owned);
    let fail = |error: OAuthError| RequestError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone().filter(|s| s.len() <= MAX_ECHO_LEN && is_vschar(s)),
        error,
    };
    validate_after_redirect(params, &client, resources)
        .map(|checked| AuthorizationRequest {
            client: client.clone(),
            redirect_uri: redirect_uri.clone(),
            redirect_uri_param: redirect_uri_param.map(str::to_owned),
            state: state.clone(),
            target: checked.target,
            nonce: checked.nonce,
            code_challenge: checked.code_challenge,
            prompt: checked.prompt,
            max_age: checked.max_age,
            login_hint: checked.login_hint,
            id_token_hint: checked.id_token_hint,
        })
        .map_err(fail)
}

struct Checked {
    target: Target,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Prompt,
    max_age: Option<i64>,
    login_hint: Option<String>,
    id_token_hint: Option<String>,
}

fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

fn validate_after_redirect(
    params: &Params,
    client: &Client,
    resources: &[Resource],
) -> Result<Checked, OAuthError> {
    if let Some(error) = params.repeat_error(&["resource"]) {
        return Err(error);
    }
    check_response(params, client)?;
    let target = scopes_and_audience(params, client, resources)?;
    let code_challenge = check_pkce(params, client)?;
    let nonce = check_echoed(params)?;
    let prompt = Prompt::parse(params.get("prompt")?)?;
    let max_age = match params.get("max_age")? {
        None => None,
        Some(value) => Some(
            value
                .parse::<i64>()
                .ok()
                .filter(|age| *age >= 0)
                .ok_or_else(|| invalid("max_age must be a non-negative number of seconds"))?,
        ),
    };
    let login_hint = params.get("login_hint")?.filter(|h| h.len() <= 256).map(str::to_owned);
    let id_token_hint = params.get("id_token_hint")?.map(str::to_owned);
    Ok(Checked { target, nonce, code_challenge, prompt, max_age, login_hint, id_token_hint })
}

/// What is asked for and how it is to be answered: only a code, in the query, for a client
/// registered for codes, with no request object.
fn check_response(params: &Params, client: &Client) -> Result<(), OAuthError> {
    match params.get("response_type")? {
        Some("code") => {}
        None => return Err(invalid("response_type is missing: use response_type=code")),
        Some(other) if other.split(' ').any(|t| t == "token" || t == "id_token") => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "response_type token or id_token (the implicit and hybrid flows) is not supported: it leaks tokens in URLs (RFC 9700 section 2.1.2); use response_type=code with PKCE",
            ));
        }
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "this response_type is not supported: use response_type=code",
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization_code grant",
        ));
    }
    match params.get("response_mode")? {
        None | Some("query") => {}
        Some(_) => {
            return Err(invalid("this response_mode is not supported: use query (or omit it)"));
        }
    }
    if params.get("request")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    Ok(())
}

/// `state` and `nonce`, which come back to the client: bounded and printable. The nonce.
fn check_echoed(params: &Params) -> Result<Option<String>, OAuthError> {
    let nonce = params.get("nonce")?.map(str::to_owned);
    let state = params.get("state")?;
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_ECHO_LEN)
        || state.is_some_and(|s| s.len() > MAX_ECHO_LEN)
    {
        return Err(invalid(format!("state and nonce may be at most {MAX_ECHO_LEN} characters")));
    }
    // RFC 6749 Appendix A.5: state is 1*VSCHAR. A nonce has no grammar, but a control
    // character in it could only be meant to break whatever logs or compares it.
    if state.is_some_and(|s| !is_vschar(s)) {
        return Err(invalid("state may only contain visible ASCII characters and spaces"));
    }
    if nonce.as_ref().is_some_and(|n| n.chars().any(char::is_control)) {
        return Err(invalid("nonce may not contain control characters"));
    }
    Ok(nonce)
}

fn scopes_and_audience(
    params: &Params,
    client: &Client,
    resources: &[Resource],
) -> Result<Target, OAuthError> {
    let how = match params.get("scope")? {
        Some(_) => audience::Requested::Explicitly,
        None => audience::Requested::ByDefault,
    };
    let requested = match params.get("scope")? {
        // RFC 6749 §3.3: without a scope parameter, the client's registered scopes apply.
        None => Scopes::from_list(&client.scopes),
        Some(value) => Scopes::parse(value).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                "scope must be scope names separated by single spaces",
            )
        })?,
    };
    if requested.iter().any(|s| !audience::is_known(s, resources)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "a requested scope is not defined by this server (discovery lists scopes_supported)",
        ));
    }
    if requested.outside(&client.scopes).next().is_some() {
        // The registered scopes are the server's own configuration, never request text.
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "this client is not registered for every requested scope; it may request: {}",
                client.scopes.join(" ")
            ),
        ));
    }
    let resource_params: Vec<&str> = params.all("resource").collect();
    audience::resolve(&requested, how, &resource_params, &client.scopes, resources)
}

/// RFC 7636 §4.3 and RFC 9700 §2.1.1: S256 only; required for public clients and, unless
/// switched off, for confidential ones.
fn check_pkce(params: &Params, client: &Client) -> Result<Option<String>, OAuthError> {
    let challenge = params.get("code_challenge")?;
    let method = params.get("code_challenge_method")?;
    match (challenge, method) {
        (None, None) if client.is_public() || client.require_pkce => Err(invalid(
            "code_challenge is missing: this client must use PKCE (code_challenge=BASE64URL(SHA256(verifier)), code_challenge_method=S256)",
        )),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid("code_challenge_method without code_challenge")),
        (Some(_), Some("plain")) => {
            Err(invalid("code_challenge_method=plain is not allowed: use S256"))
        }
        (Some(_), None) => {
            Err(invalid("code_challenge_method is missing: use S256 (plain is not allowed)"))
        }
        (Some(_), Some(other)) if other != "S256" => {
            Err(invalid("this code_challenge_method is not supported: use S256"))
        }
        (Some(challenge), Some(_)) if !pkce::is_s256_challenge(challenge) => Err(invalid(
            "code_challenge must be the 43-character base64url SHA-256 of the code_verifier",
        )),
        (Some(challenge), Some(_)) => Ok(Some(challenge.to_owned())),
    }
}

/// The `prompt` parameter (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Prompt {
    /// No `prompt`: pages only where they are needed.
    #[default]
    Unspecified,
    /// `none`: never show a page; answer `login_required` or `consent_required` instead.
    None,
    /// `login` (or `select_account`, which a single-account browser answers the same way)
    /// and/or `consent`.
    Ask {
        /// Authenticate again.
        login: bool,
        /// Ask for consent again.
        consent: bool,
    },
}

impl Prompt {
    /// Reads a space-separated `prompt`; `none` stands alone (OIDC Core §3.1.2.1).
    pub fn parse(value: Option<&str>) -> Result<Self, OAuthError> {
        let Some(value) = value else { return Ok(Prompt::Unspecified) };
        let (mut none, mut login, mut consent) = (false, false, false);
        for token in value.split(' ') {
            match token {
                "none" => none = true,
                "login" | "select_account" => login = true,
                "consent" => consent = true,
                _ => {
                    return Err(invalid(
                        "prompt may hold only none, login, consent and select_account",
                    ));
                }
            }
        }
        match (none, login || consent) {
            (true, true) => Err(invalid("prompt=none cannot be combined with other prompt values")),
            (true, false) => Ok(Prompt::None),
            (false, _) => Ok(Prompt::Ask { login, consent }),
        }
    }

    /// `prompt=none`.
    pub fn is_none(self) -> bool {
        self == Prompt::None
    }

    /// `prompt=login` (or `select_account`).
    pub fn login(self) -> bool {
        matches!(self, Prompt::Ask { login: true, .. })
    }

    /// `prompt=consent`.
    pub fn consent(self) -> bool {
        matches!(self, Prompt::Ask { consent: true, .. })
    }
}

/// What happens next for a valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Show the login page.
    NeedsLogin,
    /// Show the consent page.
    NeedsConsent,
    /// Issue a code.
    Approved,
    /// Tell the client (prompt=none could not be honoured).
    Refused(OAuthError),
}

/// Where the user stands in the flow; `fresh_login`/`fresh_consent` are set when the request
/// is continued from the login or consent page, so `prompt` does not ask again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress<'a> {
    /// The current session, if any.
    pub session: Option<&'a Session>,
    /// The user authenticated after this request was first seen (the login page's answer, or
    /// a session whose `auth_time` is not before the form's server-signed `seen_at`).
    pub fresh_login: bool,
    /// The user consented in this very round.
    pub fresh_consent: bool,
    /// The subject of the request's verified `id_token_hint`.
    pub hinted_subject: Option<&'a str>,
}

/// Decides the next step (OIDC Core §3.1.2.3, §3.1.2.4).
pub fn decide(
    request: &AuthorizationRequest,
    progress: Progress<'_>,
    consented: Option<&Scopes>,
    now: i64,
) -> Decision {
    let too_old =
        |session: &Session| request.max_age.is_some_and(|age| now - session.auth_time > age);
    // OIDC Core §3.1.2.1: the hint names the user the client expects; a session of anyone else
    // does not answer the request.
    let other_user =
        |session: &Session| progress.hinted_subject.is_some_and(|sub| sub != session.user_id);
    let login_needed = match progress.session {
        None => true,
        Some(session) if other_user(session) && progress.fresh_login => {
            return Decision::Refused(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user signed in as another account than the one id_token_hint names",
            ));
        }
        Some(session) => {
            other_user(session)
                || (!progress.fresh_login && (request.prompt.login() || too_old(session)))
        }
    };
    if login_needed {
        return if request.prompt.is_none() {
            Decision::Refused(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ))
        } else {
            Decision::NeedsLogin
        };
    }
    let remembered = consented.is_some_and(|granted| request.target.scopes.is_subset_of(granted))
        && remembered_consent_applies(&request.client, &request.redirect_uri);
    let consent_needed = request.client.require_consent
        && !progress.fresh_consent
        && (request.prompt.consent() || !remembered);
    if consent_needed {
        return if request.prompt.is_none() {
            Decision::Refused(OAuthError::new(
                ErrorCode::ConsentRequired,
                "the user has not approved this application",
            ))
        } else {
            Decision::NeedsConsent
        };
    }
    Decision::Approved
}

/// Whether a consent the user gave before may answer this request without asking again.
///
/// RFC 8252 §8.6: unless the client's identity can be assured, a request is processed as if
/// nothing had been approved before. A confidential client proves its identity at the token
/// endpoint, and a public client redirecting to an https host receives the code only there;
/// but a loopback or custom-scheme redirect URI can be claimed by any local process, so a
/// public client using one is asked every time, unless its registration sets
/// `remember_consent = true` (which `latchkey check` reports).
pub fn remembered_consent_applies(client: &Client, redirect_uri: &str) -> bool {
    client.remember_consent.unwrap_or_else(|| !client.is_public() || is_web_origin(redirect_uri))
}

/// An https URI whose host is not loopback: only that host's server can receive the response.
pub fn is_web_origin(redirect_uri: &str) -> bool {
    url::Url::parse(redirect_uri).is_ok_and(|url| {
        url.scheme() == "https" && url.host().is_some() && !redirect_uri::is_loopback(&url)
    })
}

/// `redirect_uri` with `pairs` appended to its query (RFC 6749 §4.1.2: keep the existing query).
pub fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        // Nothing to add: the URI as registered, without a stray `?`.
        return redirect_uri.to_owned();
    }
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.into()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The error response for the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
pub fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
    issuer: &str,
) -> String {
    let mut pairs =
        vec![("error", error.code.as_str()), ("error_description", error.description.as_str())];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    redirect_with(redirect_uri, &pairs)
}

/// Whether every character is a VSCHAR (%x20-7E, RFC 6749 Appendix A).
fn is_vschar(value: &str) -> bool {
    value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests;
