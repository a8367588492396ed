//! The pages: the citizens' portal at `/` (and `/v/{number}`, the link printed on every
//! resolution), the officers' console under `/console`, and their scripts, styles and
//! translations under `/assets`. Pages are HTML shells drawn in the browser from the
//! JSON API; a console page checks its caller's session and role as its API routes do.
//! The files live in `server/web/` and are compiled into the binary.

use axum::extract::{Path, Query, State};
use axum::http::header::{self, ACCEPT_LANGUAGE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::access::{
    caller, AccountReaders, AnyStaff, DeadLetterReaders, DeskOfficers, FinanceReaders, Policy,
    Reviewers,
};
use super::ApiState;

/// The languages pages are translated into; the first is the default.
pub const LANGUAGES: [&str; 3] = ["ru", "ky", "en"];

/// Scripts, styles and translations, by the name under `/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css", include_str!("../../web/app.css")),
    (
        "page.js",
        "text/javascript",
        include_str!("../../web/page.js"),
    ),
    (
        "portal.js",
        "text/javascript",
        include_str!("../../web/portal.js"),
    ),
    (
        "open-data.js",
        "text/javascript",
        include_str!("../../web/open-data.js"),
    ),
    (
        "console.js",
        "text/javascript",
        include_str!("../../web/console.js"),
    ),
    (
        "i18n/ru.ftl",
        "text/plain",
        include_str!("../../web/i18n/ru.ftl"),
    ),
    (
        "i18n/ky.ftl",
        "text/plain",
        include_str!("../../web/i18n/ky.ftl"),
    ),
    (
        "i18n/en.ftl",
        "text/plain",
        include_str!("../../web/i18n/en.ftl"),
    ),
];

const PORTAL: &str = include_str!("../../web/portal.html");
const OPEN_DATA: &str = include_str!("../../web/open-data.html");
const LOGIN: &str = include_str!("../../web/login.html");
/// The shell of a console page the script draws whole: `{{page}}` and `{{title}}`.
const CONSOLE: &str = include_str!("../../web/console.html");

#[derive(Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
}

/// `GET /` and `GET /v/{number}`: the citizens' portal.
pub async fn portal(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    page(&state, PORTAL, &headers, query.lang.as_deref())
}

/// `GET /open-data`: the anonymised counts, for anyone.
pub async fn open_data(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    page(&state, OPEN_DATA, &headers, query.lang.as_deref())
}

/// `GET /console/login`: login and password, and the city's identity provider where
/// one is configured.
pub async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let shell = match &state.app.oidc {
        Some(oidc) => LOGIN
            .replace("{{oidc-hidden}}", "")
            .replace("{{oidc-name}}", &escape_html(oidc.display_name())),
        None => LOGIN
            .replace("{{oidc-hidden}}", "hidden")
            .replace("{{oidc-name}}", ""),
    };
    page(&state, &shell, &headers, query.lang.as_deref())
}

/// `GET /console`: the desk every console user starts at.
pub async fn console() -> Redirect {
    Redirect::to("/console/queue")
}

/// `GET /console/queue`: the review desk, for those who may decide reviews.
pub async fn queue(
    State(state): State<ApiState>,
    parts: Parts,
    Query(query): Query<PageQuery>,
) -> Response {
    console_page::<Reviewers>(&state, &parts, query, "queue", "queue-title").await
}

/// `GET /console/cameras`: camera health, for every staff role.
pub async fn cameras(
    State(state): State<ApiState>,
    parts: Parts,
    Query(query): Query<PageQuery>,
) -> Response {
    console_page::<AnyStaff>(&state, &parts, query, "cameras", "cameras-title").await
}

/// `GET /console/dead-letters`: messages refused at the door.
pub async fn dead_letters(
    State(state): State<ApiState>,
    parts: Parts,
    Query(query): Query<PageQuery>,
) -> Response {
    console_page::<DeadLetterReaders>(&state, &parts, query, "dead-letters", "dead-letters-title")
        .await
}

/// `GET /console/accounts`: the accounts, for admins (who also make them) and auditors.
pub async fn accounts(
    State(state): State<ApiState>,
    parts: Parts,
    Query(query): Query<PageQuery>,
) -> Response {
    console_page::<AccountReaders>(&state, &parts, query, "accounts", "accounts-title").await
}

/// `GET /console/dashboard`: the figures in charts, for every staff role.
pub async fn dashboard(
    State(state): State<ApiState>,
    parts: Parts,
    Query(query): Query<PageQuery>,
) -> Response {
    console_page::<AnyStaff>(&state, &parts, query, "dashboard", "dashboard-title").await
}

/// `GET /console/finance`: statements, credits waiting for a decision, reconciliation
/// totals and refunds owed.
pub async fn finance(
    State(state): State<ApiState>,
    parts: Parts,
    Query(query): Query<PageQuery>,
) -> Response {
    console_page::<FinanceReaders>(&state, &parts, query, "finance", "finance-title").await
}

/// `GET /console/reports`: violations officers saw themselves and road accidents, for
/// the officers at a desk.
pub async fn reports(
    State(state): State<ApiState>,
    parts: Parts,
    Query(query): Query<PageQuery>,
) -> Response {
    console_page::<DeskOfficers>(&state, &parts, query, "reports", "reports-title").await
}

/// A console page drawn whole by the script, for the roles `P` allows.
async fn console_page<P: Policy>(
    state: &ApiState,
    parts: &Parts,
    query: PageQuery,
    page_name: &str,
    title: &str,
) -> Response {
    let path = format!("/console/{page_name}");
    let lang = language(&parts.headers, query.lang.as_deref());
    if let Err(refusal) = allowed::<P>(state, parts, &path, lang).await {
        return refusal;
    }
    let shell = CONSOLE
        .replace("{{page}}", page_name)
        .replace("{{title}}", title);
    page(state, &shell, &parts.headers, query.lang.as_deref())
}

/// `GET /assets/{*file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("{content_type}; charset=utf-8")) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    // Served with the binary: a new release may change them, so browsers ask again.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(headers);
    response
}

/// Lets the request through when its session's role is one `P` allows; otherwise the
/// login page (no session) or a refusal in `lang` (a role that may not see the page).
async fn allowed<P: Policy>(
    state: &ApiState,
    parts: &Parts,
    path: &str,
    lang: &str,
) -> Result<(), Response> {
    match caller(parts, state).await {
        Ok(Some(account)) if P::ROLES.contains(&account.role) => Ok(()),
        Ok(Some(account)) => {
            let role = message(lang, &format!("role-{}", account.role), &[]);
            Err((
                StatusCode::FORBIDDEN,
                secure_html(format!(
                    "<!doctype html><html lang=\"{lang}\"><meta charset=\"utf-8\">\
                     <title>{}</title><p>{} <a href=\"/console/login\">{}</a></p></html>",
                    escape_html(&message(lang, "forbidden-title", &[])),
                    escape_html(&message(lang, "forbidden-role", &[("role", &role)])),
                    escape_html(&message(lang, "log-in-as-other", &[])),
                )),
            )
                .into_response())
        }
        Ok(None) => Err(Redirect::to(&format!("/console/login?next={path}")).into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// The pages' message `key` in `lang` (from the translations they load), its
/// `{ $name }` placeables filled from `args`; the key itself where there is none, as
/// the pages' own lookup answers.
fn message(lang: &str, key: &str, args: &[(&str, &str)]) -> String {
    let file = format!("i18n/{lang}.ftl");
    let text = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .and_then(|(_, _, body)| {
            body.lines()
                .filter_map(|line| line.split_once(" = "))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, text)| text.trim())
        })
        .unwrap_or(key);
    fill(text, args)
}

/// `text` with its `{ $name }` placeables (any spacing inside the braces, as the pages'
/// own lookup reads them) filled from `args`; one `args` lacks is left empty.
fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut filled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        filled.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let placeable = after.find('}').and_then(|close| {
            let name = after[..close].trim().strip_prefix('$')?.trim();
            let value = args
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, v)| *v);
            Some((value, close))
        });
        match placeable {
            Some((value, close)) => {
                filled.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                filled.push('{');
                rest = after;
            }
        }
    }
    filled.push_str(rest);
    filled
}

/// `text` safe inside HTML text and quoted attributes.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page that moves the browser on to `path` by itself: a navigation this site starts,
/// so its SameSite=Strict session cookie goes with it.
pub(crate) fn moving_on(path: &'static str) -> Response {
    secure_html(format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={path}\"><title>kozomol</title>\
         <p><a href=\"{path}\">{path}</a></p></html>"
    ))
}

/// `template` in the visitor's language. Times are shown on the jurisdiction's clock
/// (`{{utc-offset}}`, minutes east of UTC), as the resolutions and deadlines are
/// dated, wherever the visitor's device is.
fn page(state: &ApiState, template: &str, headers: &HeaderMap, asked: Option<&str>) -> Response {
    let lang = language(headers, asked);
    let offset_minutes = state.app.jurisdiction.utc_offset_seconds() / 60;
    secure_html(
        template
            .replace("{{lang}}", lang)
            .replace("{{utc-offset}}", &offset_minutes.to_string()),
    )
    .into_response()
}

fn secure_html(body: String) -> Response {
    let mut response = axum::response::Html(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(headers);
    response
}

/// What every page and asset is sent with: only this site's own scripts and styles run
/// (no inline code, so injected markup cannot run), no framing, no sniffing, and no
/// referrer (a fine's links carry its grant).
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The page's language: the one asked for in the link, else the visitor's pick (the
/// `lang` cookie), else the first of `Accept-Language` we have, else Russian.
pub fn language(headers: &HeaderMap, asked: Option<&str>) -> &'static str {
    let known = |tag: &str| {
        let primary = tag.split(['-', '_']).next().unwrap_or("").trim();
        LANGUAGES
            .iter()
            .copied()
            .find(|l| l.eq_ignore_ascii_case(primary))
    };
    if let Some(lang) = asked.and_then(known) {
        return lang;
    }
    if let Some(lang) = super::access::cookie(headers, "lang").and_then(known) {
        return lang;
    }
    let mut offered: Vec<(f32, &'static str)> = headers
        .get_all(ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let lang = known(parts.next()?)?;
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (q > 0.0).then_some((q, lang))
        })
        .collect();
    // Stable: of equal weights the one named first wins.
    offered.sort_by(|a, b| b.0.total_cmp(&a.0));
    offered.first().map_or(LANGUAGES[0], |(_, lang)| lang)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::COOKIE;

    #[test]
    fn languages_follow_the_link_then_the_pick_then_the_browser() {
        for (asked, cookie, accept, lang) in [
            (None, None, None, "ru"),
            (None, None, Some("ky-KG,ky;q=0.9,ru;q=0.8"), "ky"),
            (None, None, Some("en-US,en;q=0.9"), "en"),
            (None, None, Some("de-DE,de;q=0.9,en;q=0.5,ru;q=0.7"), "ru"),
            (None, None, Some("fr"), "ru"),
            (None, None, Some("ru;q=0,en;q=0.1"), "en"),
            (None, Some("lang=en"), Some("ky"), "en"),
            (None, Some("x=1; lang=ky"), Some("en"), "ky"),
            (None, Some("lang=xx"), Some("en"), "en"),
            (Some("ky"), Some("lang=en"), Some("ru"), "ky"),
            (Some("zz"), None, Some("en"), "en"),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(cookie) = cookie {
                headers.insert(COOKIE, cookie.parse().expect("cookie"));
            }
            if let Some(accept) = accept {
                headers.insert(ACCEPT_LANGUAGE, accept.parse().expect("accept"));
            }
            assert_eq!(
                language(&headers, asked),
                lang,
                "{asked:?} {cookie:?} {accept:?}"
            );
        }
    }

    #[test]
    fn placeables_are_filled_whatever_their_spacing() {
        let args = [("role", "admin")];
        for (text, want) in [
            ("The role { $role } may not.", "The role admin may not."),
            ("{$role}", "admin"),
            ("{  $role}!", "admin!"),
            ("{ $other } and { $role }", " and admin"),
            ("no placeable {", "no placeable {"),
            ("{ not one } { $role }", "{ not one } admin"),
        ] {
            assert_eq!(fill(text, &args), want, "{text}");
        }
    }

    #[test]
    fn messages_are_read_in_the_language_asked_with_their_placeables() {
        let table = [
            (
                "ru",
                "forbidden-role",
                "Роли «аудитор» эта страница недоступна.",
            ),
            (
                "ky",
                "forbidden-role",
                "«аудитор» ролу бул баракты ача албайт.",
            ),
            (
                "en",
                "forbidden-role",
                "The role “auditor” may not open this page.",
            ),
            ("en", "no-such-message", "no-such-message"),
        ];
        for (lang, key, want) in table {
            let role = message(lang, "role-auditor", &[]);
            assert_eq!(message(lang, key, &[("role", &role)]), want, "{lang} {key}");
        }
    }

    #[test]
    fn every_asset_a_page_names_is_served() {
        for template in [PORTAL, OPEN_DATA, LOGIN, CONSOLE] {
            for opener in ["src=\"/assets/", "href=\"/assets/"] {
                for named in template.split(opener).skip(1) {
                    let file = named.split('"').next().unwrap_or("");
                    assert!(
                        ASSETS.iter().any(|(name, _, _)| *name == file),
                        "/assets/{file} is not served"
                    );
                }
            }
        }
    }

    #[test]
    fn every_language_has_every_message() {
        let keys = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#') && l.contains(" = "))
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_owned()))
                .collect()
        };
        let files: Vec<(&str, Vec<String>)> = ASSETS
            .iter()
            .filter(|(name, _, _)| name.ends_with(".ftl"))
            .map(|(name, _, body)| (*name, keys(body)))
            .collect();
        assert_eq!(files.len(), LANGUAGES.len());
        let (first, reference) = &files[0];
        assert!(reference.len() > 100, "{first}");
        for (name, keys) in &files[1..] {
            assert_eq!(keys, reference, "{name} and {first} differ");
        }
        // Every message a page or script names by a literal key is translated.
        let sources = ASSETS
            .iter()
            .filter(|(name, _, _)| name.ends_with(".js"))
            .map(|(_, _, body)| *body)
            .chain([PORTAL, OPEN_DATA, LOGIN, CONSOLE]);
        for source in sources {
            for opener in [
                "t(\"",
                "data-i18n=\"",
                "data-i18n-label=\"",
                "data-i18n-title=\"",
            ] {
                let pieces: Vec<&str> = source.split(opener).collect();
                for (before, used) in pieces.iter().zip(&pieces[1..]) {
                    // `split("` is not a call of `t`.
                    if opener == "t(\""
                        && before
                            .chars()
                            .last()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    {
                        continue;
                    }
                    let key = used.split('"').next().unwrap_or("");
                    if key.starts_with("{{") {
                        // A console page's title, filled in by the server.
                        continue;
                    }
                    assert!(
                        reference.iter().any(|k| k == key),
                        "`{key}` is not translated"
                    );
                }
            }
        }
    }
}
