//! The reactor's platform corner: raising `RLIMIT_NOFILE`. Nothing here knows
//! about Protocols or loops; sockets are bound through `netkit::net`.

use std::io;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so thousands of connections
/// need no `ulimit -n` by hand. Returns the soft limit now in force.
///
/// # Errors
///
/// Whatever `getrlimit`/`setrlimit` report.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `want` is a valid rlimit that setrlimit only reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_soft_limit_to_hard() {
        let n = raise_nofile_limit().unwrap();
        assert!(n >= 256);
        assert_eq!(raise_nofile_limit().unwrap(), n);
    }
}
