//! Where `hoist chart push` sends a chart when no destination is given, from the CI environment:
//! GitLab's Harbor integration first (`$HARBOR_OCI/$HARBOR_PROJECT/charts`; `HARBOR_OCI` keeps a port
//! and may end in `/`, which must not double the slash; without `HARBOR_OCI`, the host of `HARBOR_URL`
//! or `HARBOR_HOST`), else GitLab's own registry (`oci://$CI_REGISTRY_IMAGE`). Credentials follow from
//! the host through the usual lookup (the Harbor variables belong to the Harbor host).
//!
//! The `charts/` path under the Harbor project is what keeps a chart named like the project (the usual
//! case) from landing on the project's image: `hoist build` pushes `$HARBOR_HOST/$HARBOR_PROJECT/shop`,
//! the chart goes to `$HARBOR_HOST/$HARBOR_PROJECT/charts/shop`. (GitLab's registry needs no such path:
//! the image is `$CI_REGISTRY_IMAGE` itself, the chart `$CI_REGISTRY_IMAGE/<chart>`.) The plain
//! `$HARBOR_OCI/$HARBOR_PROJECT` form stays one argument away: `hoist chart push DIR "$HARBOR_OCI/$HARBOR_PROJECT"`.

use super::{host_of, vars, Env};

/// The default chart destination and the variables it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartDestination {
    /// `oci://host[:port]/path`, no trailing slash.
    pub url: String,
    pub from: &'static str,
}

/// The path under the Harbor project that charts go to by default.
pub const CHARTS_PATH: &str = "charts";

/// The chart destination the CI environment implies, if any.
pub fn chart_destination(env: &dyn Env) -> Option<ChartDestination> {
    if let Some(project) = env.non_empty(vars::HARBOR_PROJECT) {
        let project = project.trim_matches('/');
        let host =
            env.non_empty(vars::HARBOR_OCI).map(|o| (host_of(&o), "HARBOR_OCI/HARBOR_PROJECT/charts")).or_else(|| {
                super::harbor_host(env).map(|(h, var)| {
                    (
                        h,
                        if var == vars::HARBOR_URL {
                            "HARBOR_URL/HARBOR_PROJECT/charts"
                        } else {
                            "HARBOR_HOST/HARBOR_PROJECT/charts"
                        },
                    )
                })
            });
        if let Some((host, from)) = host.filter(|(h, _)| !h.is_empty()) {
            return Some(ChartDestination { url: format!("oci://{host}/{project}/{CHARTS_PATH}"), from });
        }
    }
    env.non_empty(vars::CI_REGISTRY_IMAGE).map(|image| ChartDestination {
        url: format!("oci://{}", image.trim().trim_end_matches('/')),
        from: "CI_REGISTRY_IMAGE",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    fn dest(pairs: &[(&str, &str)]) -> Option<String> {
        let env = MapEnv(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        chart_destination(&env).map(|d| d.url)
    }

    #[test]
    fn harbor_first_without_double_slashes() {
        let harbor = [("HARBOR_OCI", "oci://harbor.example.com:8443/"), ("HARBOR_PROJECT", "team")];
        assert_eq!(dest(&harbor).as_deref(), Some("oci://harbor.example.com:8443/team/charts"));
        let both = [harbor[0], harbor[1], ("CI_REGISTRY_IMAGE", "registry.gitlab.com/g/p")];
        assert_eq!(dest(&both).as_deref(), Some("oci://harbor.example.com:8443/team/charts"));
        let url_only = [("HARBOR_URL", "https://h.example.com:444/"), ("HARBOR_PROJECT", "/p/")];
        assert_eq!(dest(&url_only).as_deref(), Some("oci://h.example.com:444/p/charts"));
        assert_eq!(dest(&[("HARBOR_HOST", "h.io"), ("HARBOR_PROJECT", "p")]).as_deref(), Some("oci://h.io/p/charts"));
    }

    #[test]
    fn gitlab_registry_otherwise() {
        assert_eq!(
            dest(&[("CI_REGISTRY_IMAGE", "registry.gitlab.com/g/p")]).as_deref(),
            Some("oci://registry.gitlab.com/g/p")
        );
        // A project without a Harbor host is not a destination.
        assert_eq!(dest(&[("HARBOR_PROJECT", "p")]), None);
        assert_eq!(dest(&[]), None);
    }
}
