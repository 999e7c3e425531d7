//! anxind
