//! System calls: being written.
#![allow(unsafe_code)]
