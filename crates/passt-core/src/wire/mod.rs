//! Wire formats: being written.
