//! Lifecycle tests on the fake kernel (no root).
