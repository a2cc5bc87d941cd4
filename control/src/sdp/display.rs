//! Writing SDP back out, in the line order RFC 8866 §5 requires, with CRLF.

use super::model::{Connection, MediaDescription, Origin, Sdp};
use std::fmt;

/// Writes `<kind>=<value>\r\n`, replacing CR/LF inside the value so that no
/// field can smuggle in extra lines.
fn line(f: &mut fmt::Formatter<'_>, kind: char, value: &str) -> fmt::Result {
    write!(f, "{kind}=")?;
    if value.contains(['\r', '\n']) {
        f.write_str(&value.replace(['\r', '\n'], " "))?;
    } else {
        f.write_str(value)?;
    }
    f.write_str("\r\n")
}

fn attributes(f: &mut fmt::Formatter<'_>, attrs: &[(String, Option<String>)]) -> fmt::Result {
    for (name, value) in attrs {
        match value {
            Some(value) => line(f, 'a', &format!("{name}:{value}"))?,
            None => line(f, 'a', name)?,
        }
    }
    Ok(())
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        write!(
            f,
            "{} {} {} {} {} {}",
            or_dash(&self.username),
            or_dash(&self.sess_id),
            or_dash(&self.sess_version),
            or_dash(&self.nettype),
            or_dash(&self.addrtype),
            or_dash(&self.address)
        )
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.nettype, self.addrtype, self.addr)?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(n) = self.num_addrs {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = format!("{} {}", self.kind, self.port);
        if let Some(count) = self.port_count {
            m.push_str(&format!("/{count}"));
        }
        m.push(' ');
        m.push_str(&self.proto);
        for format in &self.formats {
            m.push(' ');
            m.push_str(format);
        }
        line(f, 'm', &m)?;
        if let Some(title) = &self.title {
            line(f, 'i', title)?;
        }
        if let Some(c) = &self.connection {
            line(f, 'c', &c.to_string())?;
        }
        for b in &self.bandwidths {
            line(f, 'b', b)?;
        }
        if let Some(k) = &self.key {
            line(f, 'k', k)?;
        }
        attributes(f, &self.attributes)
    }
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        line(f, 'v', &self.version.to_string())?;
        line(f, 'o', &self.origin.to_string())?;
        line(
            f,
            's',
            if self.session_name.is_empty() {
                "-"
            } else {
                &self.session_name
            },
        )?;
        if let Some(info) = &self.session_info {
            line(f, 'i', info)?;
        }
        if let Some(uri) = &self.uri {
            line(f, 'u', uri)?;
        }
        for e in &self.emails {
            line(f, 'e', e)?;
        }
        for p in &self.phones {
            line(f, 'p', p)?;
        }
        if let Some(c) = &self.connection {
            line(f, 'c', &c.to_string())?;
        }
        for b in &self.bandwidths {
            line(f, 'b', b)?;
        }
        if self.times.is_empty() {
            line(f, 't', "0 0")?;
        }
        for t in &self.times {
            line(f, 't', &t.timing)?;
            for r in &t.repeats {
                line(f, 'r', r)?;
            }
        }
        if let Some(z) = &self.time_zones {
            line(f, 'z', z)?;
        }
        if let Some(k) = &self.key {
            line(f, 'k', k)?;
        }
        attributes(f, &self.attributes)?;
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}
