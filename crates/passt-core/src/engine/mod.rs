//! Engine: being written.
