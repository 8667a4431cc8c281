//! `settings!`: the one list of settings (in `mod.rs`) becomes the [`Settings`] struct and
//! its `Default`, the TOML form (serde on that struct), the `wspush serve` flags with their
//! `WSPUSH_*` variables ([`ServeArgs`]) and the overlay of flags onto the file.
//!
//! The names follow from the setting's own: `queue_bytes` is `--queue-bytes`,
//! `WSPUSH_QUEUE_BYTES` and `queue_bytes = …` in the file. The type's [`SettingValue`] impl
//! says how a flag of that type parses; extra `clap::Arg` calls (`.requires(..)`,
//! `.hide_env_values(true)`) follow the value name where one setting needs them.
//!
//! [`Settings`]: super::Settings
//! [`ServeArgs`]: super::ServeArgs
//! [`SettingValue`]: super::value::SettingValue

use clap::Arg;

use super::value::SettingValue;

/// `--queue-bytes` for `queue_bytes`.
pub fn flag_of(name: &str) -> String {
    name.replace('_', "-")
}

/// `WSPUSH_QUEUE_BYTES` for `queue_bytes`.
pub fn env_of(name: &str) -> String {
    format!("WSPUSH_{}", name.to_ascii_uppercase())
}

/// One setting's flag: its names, help (the doc, then the default) and parser.
pub fn setting_arg<T: SettingValue>(
    name: &'static str,
    doc: &[&str],
    default: &T,
    value_name: &'static str,
) -> Arg {
    let doc = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    // `--help` shows the built-in default, not clap's: clap must not fill absent flags in,
    // or a flag left out would hide the file's value.
    let help = format!(
        "{} [default: {}]",
        doc.trim_end_matches('.'),
        default.show()
    );
    T::configure(
        Arg::new(name)
            .long(flag_of(name))
            .env(env_of(name))
            .value_name(value_name)
            .value_parser(T::parser())
            .help(help),
    )
}

/// Expands the list of settings; see the module docs.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $default:expr, $value_name:literal $(.$call:ident($($arg:expr),*))*;
    )+) => {
        /// The resolved settings of a running server. The TOML file has the same keys;
        /// a key not listed here is an error.
        #[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $name: $ty, )+
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $name: $default, )+ }
            }
        }

        /// `wspush serve` flags. Each is optional so that an absent flag falls back
        /// to the environment, then the file, then the default shown in `--help`.
        #[derive(Debug, Default, Clone)]
        pub struct ServeArgs {
            /// TOML file with any of the settings (same names, snake_case).
            pub config: Option<std::path::PathBuf>,
            $( $(#[doc = $doc])+ pub $name: Option<<$ty as SettingValue>::Flag>, )+
        }

        impl Settings {
            /// Every setting's name, in the order of the list.
            pub const NAMES: &[&str] = &[$(stringify!($name)),+];

            /// Every setting changed to another value (the round-trip test's input).
            #[cfg(test)]
            fn others(&self) -> Settings {
                Settings { $( $name: SettingValue::other(&self.$name), )+ }
            }

            /// Puts every flag (or variable) that was given over `self`.
            fn overlay(&mut self, args: &ServeArgs) {
                $( if let Some(v) = &args.$name {
                    self.$name = <$ty as SettingValue>::from_flag(v.clone());
                } )+
            }
        }

        impl ServeArgs {
            fn setting_args() -> Vec<clap::Arg> {
                let defaults = Settings::default();
                vec![$(
                    declare::setting_arg(
                        stringify!($name), &[$($doc),+], &defaults.$name, $value_name,
                    )$(.$call($($arg),*))*,
                )+]
            }

            fn read_settings(&mut self, m: &clap::ArgMatches) {
                $( self.$name = <$ty as SettingValue>::read(m, stringify!($name)); )+
            }
        }
    };
}

impl clap::FromArgMatches for super::ServeArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = super::ServeArgs {
            config: m.get_one::<std::path::PathBuf>("config").cloned(),
            ..Default::default()
        };
        args.read_settings(m);
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for super::ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(
            Arg::new("config")
                .long("config")
                .env("WSPUSH_CONFIG")
                .value_name("FILE")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help("TOML file with any of the settings below (same names, snake_case)"),
        )
        .args(Self::setting_args())
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
