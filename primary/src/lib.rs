//! Ferry Primary ECU client.
