//! Rule evaluation support: alert templates (and, in other branches, rule files).

pub mod template;
