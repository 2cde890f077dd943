//! Ferry metadata core.
