//! One image, downloaded once and streamed to every ECU it is for while it downloads: the
//! bytes from the Image repository go through a [`Tee`] to the Primary's own checks (length,
//! and each signed hash on a thread of its own) and to each ECU's upload, at the same time.
//! Nothing is written to the Primary's disk, so nothing is read back.
//!
//! Why this stays all or nothing: every ECU checks the length and every hash itself as the
//! bytes arrive and only reports ready when all matched; an ECU that is not ready, a
//! download that failed or a Primary check that failed each make this an error, and the cycle
//! installs nothing unless every image of every ECU streamed without one. An interrupted
//! download resumes with HTTP Range inside [`crate::fetch`], so the ECUs simply see the
//! stream continue where it stopped.

use crate::distribute::EcuLink;
use crate::error::Error;
use crate::fetch::{Fetcher, SinkStop};
use crate::progress::Progress;
use ferry_core::metadata::received::ostree_pull_commit;
use ferry_core::metadata::TargetFile;
use ferry_secondary::image::tee::{FillError, Tee};
use ferry_secondary::image::{join_checks, spawn_checks};

/// Why an image did not reach its ECUs.
#[derive(Debug)]
pub enum Failure {
    /// The download, or the Primary's own check of it, failed. (Boxed: the crate's error is
    /// large and this travels through every thread's result.)
    Download(Box<Error>),
    /// This ECU refused the image or could not receive it.
    Ecu { serial: String, error: Box<Error> },
}

/// Fetch `url` (`name`, signed as `target`) once and stream it into `ecus`, each of which
/// must receive it whole. Returns when every ECU answered.
pub fn stream_image<'a, 'b: 'a>(
    fetcher: &dyn Fetcher,
    url: &str,
    name: &str,
    target: &TargetFile,
    ecus: Vec<&'a mut (dyn EcuLink + 'b)>,
) -> std::result::Result<(), Failure> {
    std::thread::scope(|s| {
        let mut tee = Tee::new();
        let checks = spawn_checks(s, &mut tee, name, target)
            .map_err(|e| Failure::Download(Box::new(e.into())))?;
        let uploads: Vec<_> = ecus
            .into_iter()
            .map(|ecu| {
                let tap = tee.tap();
                let serial = ecu.serial().to_owned();
                let length = target.length;
                (serial, s.spawn(move || ecu.send_image(tap, length)))
            })
            .collect();

        let mut progress = Progress::new(name, target.length);
        let stopped = || Error::StreamStopped {
            target: name.to_owned(),
        };
        // An OSTree pull target has no file (the checks above refused any pull target whose
        // fields disagree): its ECUs get the empty stream, and pull the commit themselves.
        let pull = matches!(ostree_pull_commit(name, target), Ok(Some(_)));
        // Each read lands in the chunk every consumer shares: the bytes are copied once.
        let fetched = if pull {
            tracing::info!(target = %name, "OSTree pull target: no file to download");
            Ok(0)
        } else {
            fetcher.fetch_reading(url, target.length, &mut |body| match tee.read_from(body) {
                Ok(n) => {
                    progress.advance(n as u64);
                    Ok(n)
                }
                Err(FillError::Read(e)) => Err(SinkStop::Read(e)),
                Err(FillError::Closed(_)) => Err(SinkStop::Refused(stopped())),
            })
        };
        progress.finish();
        // Only a complete download is finished; dropping the tee instead cuts every ECU's
        // stream, so none of them can take a partial image for a whole one.
        let fetched = fetched.and_then(|_| tee.finish().map_err(|_| stopped()));

        let checked = join_checks(checks);
        let mut refused = None;
        for (serial, upload) in uploads {
            let result = upload.join().unwrap_or_else(|_| {
                Err(Error::Config(format!(
                    "the upload thread of ECU {serial} panicked"
                )))
            });
            if let (None, Err(error)) = (&refused, result) {
                refused = Some(Failure::Ecu {
                    serial,
                    error: Box::new(error),
                });
            }
        }
        // The download's own failure, then the Primary's checks, then an ECU's refusal (which
        // is why the download was stopped, if it was).
        match (fetched, checked, refused) {
            (Err(e), _, _) if !matches!(e, Error::StreamStopped { .. }) => {
                Err(Failure::Download(Box::new(e)))
            }
            (_, Err(e), _) => Err(Failure::Download(Box::new(e.into()))),
            (_, _, Some(failure)) => Err(failure),
            (Err(e), _, None) => Err(Failure::Download(Box::new(e))),
            (Ok(_), Ok(()), None) => Ok(()),
        }
    })
}
