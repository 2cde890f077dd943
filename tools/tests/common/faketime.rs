//! A faked system clock for client processes: libfaketime, or a tiny LD_PRELOAD shim.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::run_bounded;

/// libfaketime as installed by Debian's `faketime` package.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A minimal stand-in for libfaketime: CLOCK_REALTIME (and time()) shifted by FAKETIME, which
/// takes libfaketime's relative form "+N" / "-N" with an optional s, m, h, d or y suffix.
const SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static long long offset(void) {
    static int done;
    static long long secs;
    if (!done) {
        const char *s = getenv("FAKETIME");
        if (s && (*s == '+' || *s == '-')) {
            char *end;
            long long n = strtoll(s, &end, 10);
            long long unit = 1;
            switch (*end) {
            case 'm': unit = 60; break;
            case 'h': unit = 3600; break;
            case 'd': unit = 86400; break;
            case 'y': unit = 31536000; break;
            }
            secs = n * unit;
        }
        done = 1;
    }
    return secs;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += offset();
    return r;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
"#;

/// The library to LD_PRELOAD for a faked clock: FERRY_TEST_LIBFAKETIME, else libfaketime if
/// installed, else the shim above compiled with `cc` into `dir` (never a silent skip).
pub fn faketime_library(dir: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_TEST_LIBFAKETIME") {
        return PathBuf::from(p);
    }
    if Path::new(LIBFAKETIME).exists() {
        return PathBuf::from(LIBFAKETIME);
    }
    let src = dir.join("faketime_shim.c");
    let lib = dir.join("faketime_shim.so");
    std::fs::write(&src, SHIM_C).expect("write shim source");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = run_bounded(
        Command::new(cc)
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&lib)
            .arg(&src)
            .arg("-ldl"),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.code, 0,
        "compiling the faketime shim failed (install `faketime`?):\n{out}"
    );
    lib
}
