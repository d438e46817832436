//! Harbor robot account names as CI variables carry them (`robot$<project>+<name>`): GitLab's `$$` escape,
//! and the names variable expansion ate. Used by the CI context, the credentials, `login` and `doctor`.

/// Collapses GitLab's `robot$$` escape: GitLab writes a leading `robot$` as `robot$$` so the runner's
/// variable expansion gives back `robot$…`; where no expansion happened, collapse it ourselves.
pub fn normalize_harbor_username(name: &str) -> String {
    match name.strip_prefix("robot$$") {
        Some(rest) => format!("robot${rest}"),
        None => name.to_string(),
    }
}

/// What looks wrong with a robot account name, or `None` when it looks fine (or is no robot name).
///
/// Harbor names robots `robot$<project>+<name>` (project robots) or `robot$<name>` (system robots); shells
/// and GitLab's variable expansion eat `$<word>`, leaving `robot+ci` or `robot$+ci`; GitLab's own escape
/// `robot$$` survives where nothing expanded it. The `robot$` prefix is configurable on the server, so a
/// name without it is only suspicious when it still has the `+` of a project robot.
pub fn robot_name_issue(username: &str) -> Option<String> {
    const QUOTE: &str = "quote it in single quotes in a shell ('robot$proj+ci'); in GitLab write it as robot$$proj+ci \
                         or make the variable not expanded (Settings > CI/CD > Variables > Expand variable reference off)";
    if username.starts_with("robot$$") {
        return Some(format!(
            "the username {username:?} still has GitLab's `$$` escape (expected robot$…): nothing expanded it; \
             hoist collapses a leading robot$$ for HARBOR_USERNAME, elsewhere write robot$ once"
        ));
    }
    if username == "robot$" || username.starts_with("robot$+") {
        return Some(format!(
            "the username {username:?} looks like robot$<project>+<name> with the part after `$` eaten by variable \
             expansion; {QUOTE}"
        ));
    }
    if username.starts_with("robot") && !username.contains('$') && (username.contains('+') || username == "robot") {
        return Some(format!(
            "the username {username:?} looks like a robot account whose `$<project>` was eaten by variable expansion \
             (robots are named robot$<project>+<name>); {QUOTE}"
        ));
    }
    if username.contains('+') && !username.contains('$') {
        return Some(format!(
            "the username {username:?} has a `+` but no `robot$…` prefix: a Harbor project robot is named \
             robot$<project>+<name>, and the `robot$<project>` part may have been eaten by variable expansion; {QUOTE}"
        ));
    }
    None
}
