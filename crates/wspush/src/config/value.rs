//! How each type of setting becomes a flag (and so an environment variable): the value
//! parser, what an absent default looks like in `--help`, how a parsed flag lands in
//! [`Settings`](super::Settings). One impl per type, so no setting repeats any of it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::ValueParser;
use clap::{Arg, ArgAction, ArgMatches};

use super::Overflow;

/// A type a setting may have.
pub trait SettingValue: Sized {
    /// What a flag or variable holds: `T` for a `T` setting and for an `Option<T>` one.
    type Flag: Clone + Send + Sync + 'static;
    /// Parses the flag's text (clap reports a bad value with the flag's name).
    fn parser() -> ValueParser;
    /// How many values the flag takes; one, unless the type is a list.
    fn configure(arg: Arg) -> Arg {
        arg.action(ArgAction::Set)
    }
    /// The flag's value, if it (or its variable) was given.
    fn read(m: &ArgMatches, id: &str) -> Option<Self::Flag> {
        m.get_one::<Self::Flag>(id).cloned()
    }
    /// The setting from its flag's value.
    fn from_flag(flag: Self::Flag) -> Self;
    /// The value as `--help` shows it after `default:`.
    fn show(&self) -> String;
    /// A value other than `self`, for the round-trip test of every setting.
    #[cfg(test)]
    fn other(&self) -> Self;
}

/// Types whose flag is the value itself, shown with `Display`.
macro_rules! plain {
    ($($ty:ty => |$v:ident| $other:expr;)*) => {$(
        impl SettingValue for $ty {
            type Flag = $ty;
            fn parser() -> ValueParser {
                clap::value_parser!($ty).into()
            }
            fn from_flag(flag: $ty) -> $ty {
                flag
            }
            fn show(&self) -> String {
                self.to_string()
            }
            #[cfg(test)]
            fn other(&self) -> $ty {
                let $v = self;
                $other
            }
        }
    )*};
}

plain! {
    usize => |v| v + 1;
    u64 => |v| v + 1;
    u32 => |v| v + 1;
    bool => |v| !v;
    String => |v| format!("{v}-other");
    SocketAddr => |v| SocketAddr::new(v.ip(), v.port().wrapping_add(1));
}

impl SettingValue for Overflow {
    type Flag = Overflow;
    fn parser() -> ValueParser {
        clap::builder::EnumValueParser::<Overflow>::new().into()
    }
    fn from_flag(flag: Overflow) -> Overflow {
        flag
    }
    fn show(&self) -> String {
        use clap::ValueEnum as _;
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
    #[cfg(test)]
    fn other(&self) -> Overflow {
        match self {
            Overflow::Close => Overflow::Drop,
            Overflow::Drop => Overflow::Close,
        }
    }
}

/// Settings that may be absent (a file, a secret): the flag gives the value.
macro_rules! optional {
    ($($ty:ty => $example:expr;)*) => {$(
        impl SettingValue for Option<$ty> {
            type Flag = $ty;
            fn parser() -> ValueParser {
                clap::value_parser!($ty).into()
            }
            fn from_flag(flag: $ty) -> Option<$ty> {
                Some(flag)
            }
            fn show(&self) -> String {
                match self {
                    Some(_) => "set".into(),
                    None => "none".into(),
                }
            }
            #[cfg(test)]
            fn other(&self) -> Option<$ty> {
                // Every optional setting defaults to none; a flag cannot say "none".
                Some($example.into())
            }
        }
    )*};
}

optional! {
    PathBuf => "/tmp/wspush-example";
    String => "example";
}

/// Lists: comma-separated in a flag or variable, an array in the file.
impl SettingValue for Vec<String> {
    type Flag = Vec<String>;
    fn parser() -> ValueParser {
        clap::value_parser!(String)
    }
    fn configure(arg: Arg) -> Arg {
        arg.action(ArgAction::Append).value_delimiter(',')
    }
    fn read(m: &ArgMatches, id: &str) -> Option<Vec<String>> {
        m.get_many::<String>(id).map(|v| v.cloned().collect())
    }
    fn from_flag(flag: Vec<String>) -> Vec<String> {
        flag
    }
    fn show(&self) -> String {
        if self.is_empty() {
            "none".into()
        } else {
            self.join(",")
        }
    }
    #[cfg(test)]
    fn other(&self) -> Vec<String> {
        // Two items: the flag form must split at the comma.
        vec!["a".into(), "b".into()]
    }
}
