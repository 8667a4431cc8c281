//! wspush: the push server library.
