//! Decompressors for the parts of an artifact, each with bounded memory: gzip needs none to
//! speak of, xz is given a memory limit, and zstd's decoder refuses windows over 128 MiB by
//! default (ZSTD_WINDOWLOG_LIMIT_DEFAULT).

use super::{refuse, Compression};
use crate::error::Result;
use std::io::Read;

/// What an xz stream may use to decode: `xz -9` needs 65 MiB.
const XZ_MEMLIMIT: u64 = 128 << 20;

pub(super) fn decoder<'a>(
    compression: Compression,
    input: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(input)),
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                XZ_MEMLIMIT,
                liblzma::stream::CONCATENATED,
            )
            .map_err(|e| refuse("xz decoder", e.to_string()))?;
            Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
        }
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(input)
                .map_err(|e| refuse("zstd decoder", e.to_string()))?,
        ),
    })
}
