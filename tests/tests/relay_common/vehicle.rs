//! The vehicle host as it is deployed behind a relay: its own network namespace whose one
//! route out is the relay. The Primary (the vehicle's only ECU with a modem) runs in it; its
//! two links are the vehicles' site link to the relay's namespace (`10.233.N.0/24`, the relay
//! at `.2`) and the in-vehicle network to the test's namespace (`10.234.N.0/24`), where the
//! Secondaries are reached through forwarders at `.1`. No default route: the backend's
//! addresses (`127.0.0.1` and the uplink's `10.231.N.1` in the test's namespace) are
//! unreachable from here, which [`VehicleHost::reaches`] lets a test show.

use super::netns::{command_in, ip, ip_in, RelayHost};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

#[derive(Debug)]
pub struct VehicleHost {
    pub name: String,
    /// The relay's address on the vehicles' site link.
    pub relay_ip: String,
    /// The test namespace's end of the in-vehicle network (where Secondaries are reached).
    pub in_vehicle_ip: String,
}

impl VehicleHost {
    /// The namespace and its two links, beside `relay`'s; or why not.
    pub fn make(relay: &RelayHost) -> Result<VehicleHost, String> {
        let n = relay.n;
        let ns = format!("ferry-veh-{n}");
        ip(&["netns", "add", &ns])?;
        let host = VehicleHost {
            name: ns.clone(),
            relay_ip: format!("10.233.{n}.2"),
            in_vehicle_ip: format!("10.234.{n}.1"),
        };
        let in_ns = ip_in;
        let setup = || -> Result<(), String> {
            in_ns(&ns, &["link", "set", "lo", "up"])?;
            // The site link: vehicle end frv{n}, relay end frv{n}r.
            let (veh, rel) = (format!("frv{n}"), format!("frv{n}r"));
            ip(&["link", "add", &veh, "type", "veth", "peer", "name", &rel])?;
            ip(&["link", "set", &veh, "netns", &ns])?;
            ip(&["link", "set", &rel, "netns", &relay.name])?;
            in_ns(
                &ns,
                &["addr", "add", &format!("10.233.{n}.1/24"), "dev", &veh],
            )?;
            in_ns(&ns, &["link", "set", &veh, "up"])?;
            in_ns(
                &relay.name,
                &["addr", "add", &format!("10.233.{n}.2/24"), "dev", &rel],
            )?;
            in_ns(&relay.name, &["link", "set", &rel, "up"])?;
            // The in-vehicle network: test end fri{n}, vehicle end fri{n}v.
            let (outer, inner) = (format!("fri{n}"), format!("fri{n}v"));
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["addr", "add", &format!("10.234.{n}.1/24"), "dev", &outer])?;
            ip(&["link", "set", &outer, "up"])?;
            in_ns(
                &ns,
                &["addr", "add", &format!("10.234.{n}.2/24"), "dev", &inner],
            )?;
            in_ns(&ns, &["link", "set", &inner, "up"])?;
            Ok(())
        };
        // On failure `host` is dropped here, deleting what was made.
        setup().map(|()| host)
    }

    /// A command running `program` inside the vehicle's namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        command_in(&self.name, program)
    }

    /// Whether a TCP connection from inside the vehicle's namespace to `addr` opens (bash's
    /// /dev/tcp, bounded by `timeout`).
    pub fn reaches(&self, addr: SocketAddr) -> bool {
        let probe = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
        let limit = Duration::from_secs(3).as_secs().to_string();
        Command::new("ip")
            .args([
                "netns", "exec", &self.name, "timeout", &limit, "bash", "-c", &probe,
            ])
            .output()
            .is_ok_and(|out| out.status.success())
    }
}

impl Drop for VehicleHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth ends, and with them their peers.
        let _ = ip(&["netns", "del", &self.name]);
    }
}
