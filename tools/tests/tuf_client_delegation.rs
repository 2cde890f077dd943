//! Delegated targets through `ferry tuf-client` and the python-tuf reference client: lazy
//! fetching, pre-order depth-first search, terminating delegations, paths, role-name encoding.

mod common;

use common::{Outcome, Scenario, TOP_LEVEL};

/// Delegated metadata requested by a run, in order, as "N.role" (metadata/N.role.json).
fn delegated_fetches(o: &Outcome) -> Vec<String> {
    o.paths_under("metadata/")
        .into_iter()
        .filter_map(|p| p.strip_prefix("metadata/")?.strip_suffix(".json"))
        .filter(|p| {
            let role = p.split_once('.').map_or(*p, |(_, r)| r);
            !["root", "timestamp", "snapshot", "targets"].contains(&role)
        })
        .map(str::to_string)
        .collect()
}

fn with_top_level(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = TOP_LEVEL.to_vec();
    v.extend_from_slice(extra);
    v
}

/// refresh fetches no delegated role; a download fetches only the roles whose paths match.
#[test]
fn delegated_roles_are_fetched_lazily() {
    let s = Scenario::new(&[]);
    s.tool("delegate", &["alpha", "--paths", "alpha/*"]);
    s.tool("delegate", &["beta", "--paths", "beta/*"]);
    s.tool(
        "add-target",
        &["alpha/a.txt", "--content", "a", "--role", "alpha"],
    );
    s.tool(
        "add-target",
        &["beta/b.txt", "--content", "b", "--role", "beta"],
    );

    let r = s.refresh();
    s.expect(&r, 0, "refresh");
    s.assert_metadata(&TOP_LEVEL);
    for o in &r {
        assert!(
            delegated_fetches(o).is_empty(),
            "{:?}: refresh fetched {:?}",
            o.kind,
            o.paths()
        );
    }

    let r = s.download(&["beta/b.txt"]);
    s.expect(&r, 0, "download of a target of beta");
    s.assert_metadata(&with_top_level(&[("beta.json", "beta.json")]));
    s.assert_targets(&[("beta%2Fb.txt", "b")]);
    for o in &r {
        assert_eq!(
            delegated_fetches(o),
            ["2.beta"],
            "{:?}: alpha must not be fetched",
            o.kind
        );
    }

    // beta is cached now: a second download fetches no metadata but the timestamp
    let r = s.download(&["beta/b.txt"]);
    s.expect(&r, 0, "second download");
    for o in &r {
        assert!(
            delegated_fetches(o).is_empty(),
            "{:?}: {:?}",
            o.kind,
            o.paths()
        );
    }
}

/// targets → [r1, r2], r1 → [r1a], all for pkg/*; the target is in r2: visited r1, r1a, r2.
#[test]
fn delegations_are_searched_preorder_depth_first() {
    let s = Scenario::new(&["--keytype", "ecdsa"]);
    s.tool("delegate", &["r1", "--paths", "pkg/*"]);
    s.tool("delegate", &["r2", "--paths", "pkg/*"]);
    s.tool("delegate", &["r1a", "--paths", "pkg/*", "--from", "r1"]);
    s.tool(
        "add-target",
        &["pkg/x.txt", "--content", "from r2", "--role", "r2"],
    );

    let r = s.download(&["pkg/x.txt"]);
    s.expect(&r, 0, "download");
    s.assert_metadata(&with_top_level(&[
        ("r1.json", "r1.json"),
        ("r1a.json", "r1a.json"),
        ("r2.json", "r2.json"),
    ]));
    s.assert_targets(&[("pkg%2Fx.txt", "from r2")]);
    for o in &r {
        assert_eq!(
            delegated_fetches(o),
            ["2.r1", "1.r1a", "2.r2"],
            "{:?}: search order",
            o.kind
        );
    }
}

/// The first matching role wins even when a later one lists the same path.
#[test]
fn first_matching_delegation_wins() {
    let s = Scenario::new(&[]);
    s.tool("delegate", &["first", "--paths", "shared/*"]);
    s.tool("delegate", &["second", "--paths", "shared/*"]);
    s.tool(
        "add-target",
        &["shared/x.txt", "--content", "first's", "--role", "first"],
    );
    s.tool(
        "add-target",
        &["shared/x.txt", "--content", "second's", "--role", "second"],
    );
    let r = s.download(&["shared/x.txt"]);
    s.expect(&r, 0, "download");
    s.assert_targets(&[("shared%2Fx.txt", "first's")]);
    for o in &r {
        assert_eq!(delegated_fetches(o), ["2.first"], "{:?}", o.kind);
    }
}

fn terminating_scenario(terminating: bool) -> Scenario {
    let s = Scenario::new(&[]);
    let mut first = vec!["first", "--paths", "shared/*"];
    if terminating {
        first.push("--terminating");
    }
    s.tool("delegate", &first);
    s.tool("delegate", &["second", "--paths", "shared/*"]);
    s.tool(
        "add-target",
        &["shared/x.txt", "--content", "x", "--role", "second"],
    );
    s
}

/// A terminating delegation that does not list the target ends the search: the later role's
/// target is not found and the later role is never fetched.
#[test]
fn terminating_delegation_hides_later_role() {
    let s = terminating_scenario(true);
    let r = s.download(&["shared/x.txt"]);
    s.expect(&r, 1, "download past a terminating delegation");
    s.assert_targets(&[]);
    s.assert_metadata(&with_top_level(&[("first.json", "first.json")]));
    for o in &r {
        assert_eq!(delegated_fetches(o), ["1.first"], "{:?}", o.kind);
        assert!(o.paths_under("targets/").is_empty(), "{:?}", o.kind);
    }
}

/// Control for the above: without `terminating` the search goes on to the later role.
#[test]
fn nonterminating_delegation_continues_to_later_role() {
    let s = terminating_scenario(false);
    let r = s.download(&["shared/x.txt"]);
    s.expect(&r, 0, "download past a non-terminating delegation");
    s.assert_targets(&[("shared%2Fx.txt", "x")]);
    for o in &r {
        assert_eq!(
            delegated_fetches(o),
            ["1.first", "2.second"],
            "{:?}",
            o.kind
        );
    }
}

/// A role that lists a target outside its delegated paths cannot serve it.
#[test]
fn target_outside_delegated_paths_is_not_found() {
    let s = Scenario::new(&[]);
    s.tool("delegate", &["alpha", "--paths", "alpha/*"]);
    s.tool(
        "add-target",
        &["alpha/ok.txt", "--content", "ok", "--role", "alpha"],
    );
    s.tool(
        "add-target",
        &["beta/evil.txt", "--content", "evil", "--role", "alpha"],
    );
    let r = s.download(&["beta/evil.txt"]);
    s.expect(&r, 1, "download of a target outside alpha's paths");
    s.assert_targets(&[]);
    for o in &r {
        assert!(o.paths_under("targets/").is_empty(), "{:?}", o.kind);
        assert!(
            delegated_fetches(o).is_empty(),
            "{:?}: {:?}",
            o.kind,
            o.paths()
        );
    }
    // the role itself works for its own paths
    let r = s.download(&["alpha/ok.txt"]);
    s.expect(&r, 0, "download of alpha's own target");
    s.assert_targets(&[("alpha%2Fok.txt", "ok")]);
}

/// `*` does not match "/": pkg/* does not delegate pkg/sub/x.txt.
#[test]
fn path_pattern_star_does_not_cross_directories() {
    let s = Scenario::new(&[]);
    s.tool("delegate", &["pkg", "--paths", "pkg/*"]);
    s.tool(
        "add-target",
        &["pkg/sub/x.txt", "--content", "deep", "--role", "pkg"],
    );
    let r = s.download(&["pkg/sub/x.txt"]);
    s.expect(&r, 1, "download of pkg/sub/x.txt through pkg/*");
    s.assert_targets(&[]);
    for o in &r {
        assert!(
            delegated_fetches(o).is_empty(),
            "{:?}: {:?}",
            o.kind,
            o.paths()
        );
    }
}

/// A role name with a space: fetched as N.team%20one.json, stored as team%20one.json.
#[test]
fn delegated_role_name_is_percent_encoded() {
    let s = Scenario::new(&["--keytype", "rsa"]);
    s.tool(
        "delegate",
        &["team one", "--paths", "pkg/*", "--keytype", "ed25519"],
    );
    s.tool(
        "add-target",
        &["pkg/a.bin", "--content", "team", "--role", "team one"],
    );
    let r = s.download(&["pkg/a.bin"]);
    s.expect(&r, 0, "download");
    s.assert_metadata(&with_top_level(&[("team%20one.json", "team one.json")]));
    s.assert_targets(&[("pkg%2Fa.bin", "team")]);
    for o in &r {
        assert_eq!(delegated_fetches(o), ["2.team one"], "{:?}", o.kind);
    }
}
