//! anxin-api
