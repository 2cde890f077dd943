//! The relay host as it is deployed: its own network namespace with an uplink toward the
//! backend (addresses `10.231.N.0/24`; the backend's servers stay in the test's namespace and
//! the relay reaches them only over it) and a link to the test's namespace (`10.232.N.0/24`,
//! where the test's own tools reach the relay). The vehicle is a third namespace
//! ([`super::vehicle`]) whose only route out is the relay. Cutting the uplink is `ip link set ...
//! down` inside the relay's namespace.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub struct RelayHost {
    pub name: String,
    /// The number in its names and addresses (`10.23x.N.0/24`), shared by the vehicle host.
    pub n: u32,
    /// The backend side of the uplink (in the test's namespace) and the relay's side.
    pub uplink_backend_ip: String,
    uplink_relay_if: String,
    /// The relay's address on the site link.
    pub site_relay_ip: String,
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip ARGS...` inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut full = vec!["netns", "exec", ns, "ip"];
    full.extend_from_slice(args);
    ip(&full)
}

/// A command running `program` inside namespace `ns`.
pub fn command_in(ns: &str, program: &std::path::Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

impl RelayHost {
    /// Make the namespace and both links, or say why not.
    pub fn make() -> Result<RelayHost, String> {
        let mut last = String::new();
        for _ in 0..8 {
            let k = NEXT.fetch_add(1, Ordering::SeqCst);
            let n = (std::process::id() % 50) * 5 + k % 5 + 1;
            match Self::make_n(n) {
                Ok(host) => return Ok(host),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn make_n(n: u32) -> Result<RelayHost, String> {
        let ns = format!("ferry-relay-{n}");
        ip(&["netns", "add", &ns])?;
        let host = RelayHost {
            name: ns.clone(),
            n,
            uplink_backend_ip: format!("10.231.{n}.1"),
            uplink_relay_if: format!("fru{n}r"),
            site_relay_ip: format!("10.232.{n}.2"),
        };
        let setup = || -> Result<(), String> {
            let exec = |args: &[&str]| ip_in(&ns, args);
            exec(&["link", "set", "lo", "up"])?;
            for (link, net) in [("fru", "231"), ("frs", "232")] {
                let outer = format!("{link}{n}");
                let inner = format!("{link}{n}r");
                ip(&[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                ])?;
                ip(&["link", "set", &inner, "netns", &ns])?;
                ip(&["addr", "add", &format!("10.{net}.{n}.1/24"), "dev", &outer])?;
                ip(&["link", "set", &outer, "up"])?;
                exec(&["addr", "add", &format!("10.{net}.{n}.2/24"), "dev", &inner])?;
                exec(&["link", "set", &inner, "up"])?;
            }
            Ok(())
        };
        // On failure `host` is dropped here, deleting what was made.
        setup().map(|()| host)
    }

    /// The command line prefix running a program inside the relay's namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        command_in(&self.name, program)
    }

    /// `ip link set <uplink> down|up` inside the relay's namespace.
    pub fn uplink(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip_in(&self.name, &["link", "set", &self.uplink_relay_if, state]).unwrap();
    }
}

impl Drop for RelayHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth ends, and with them their peers.
        let _ = ip(&["netns", "del", &self.name]);
    }
}
