//! `voltline-tests`: end-to-end, crash and fault tests that run the real components together.
