//! The settings: defaults, file, flags, and every setting through every form.

#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn defaults_are_the_documented_ones() {
    let s = Settings::resolve(&ServeArgs::default()).unwrap();
    assert_eq!(s.ws.to_string(), "0.0.0.0:8080");
    assert_eq!(s.rpc.to_string(), "127.0.0.1:18800");
    assert_eq!(s.overflow, Overflow::Close);
}

#[test]
fn flags_override_file_which_overrides_defaults() {
    let dir = std::env::temp_dir().join(format!("wspush-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wspush.toml");
    std::fs::write(
        &file,
        "rpc = \"127.0.0.1:19000\"\nqueue_bytes = 4096\noverflow = \"drop\"\n",
    )
    .unwrap();
    let args = ServeArgs {
        config: Some(file.clone()),
        queue_bytes: Some(8192),
        ..ServeArgs::default()
    };
    let s = Settings::resolve(&args).unwrap();
    assert_eq!(s.rpc.to_string(), "127.0.0.1:19000");
    assert_eq!(s.queue_bytes, 8192);
    assert_eq!(s.overflow, Overflow::Drop);
    assert_eq!(s.ws.to_string(), "0.0.0.0:8080");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn security_and_limit_settings_parse_from_toml() {
    let s = Settings::from_toml(
        "jwt_secret = \"k\"\npublic_channels = [\"lobby\"]\nallowed_origins = [\"https://a\"]\n\
         rpc_secret = \"r\"\nrpc_insecure = true\nmax_connections_per_ip = 7\n\
         connects_per_ip_per_sec = 3\nmax_header_bytes = 9000\nmax_frame_bytes = 100\n",
    )
    .unwrap();
    assert_eq!(s.jwt_secret.as_deref(), Some("k"));
    assert_eq!(s.public_channels, ["lobby"]);
    assert_eq!(s.allowed_origins, ["https://a"]);
    assert!(s.rpc_insecure);
    assert_eq!(
        (s.max_connections_per_ip, s.connects_per_ip_per_sec),
        (7, 3)
    );
    assert_eq!((s.max_header_bytes, s.max_frame_bytes), (9000, 100));
    let d = Settings::default();
    assert!(d.jwt_secret.is_none() && d.rpc_secret.is_none() && d.tls_cert.is_none());
    assert!(d.allowed_origins.is_empty() && !d.rpc_insecure);
}

#[test]
fn history_byte_limits_come_from_toml_and_reach_the_retention() {
    let d = Settings::default().retention();
    assert_eq!((d.stream_bytes, d.total_bytes), (4 << 20, 64 << 20));
    let s = Settings::from_toml("history_stream_bytes = 1000\nhistory_total_bytes = 0\n").unwrap();
    let r = s.retention();
    assert_eq!((r.stream_bytes, r.total_bytes), (1000, 0));
}

#[test]
fn rpc_limits_have_their_defaults_and_come_from_toml_and_flags() {
    let d = Settings::default();
    assert_eq!(
        (d.rpc_max_connections, d.rpc_max_connections_per_ip),
        (1024, 256)
    );
    assert_eq!((d.rpc_message_timeout, d.rpc_auth_timeout), (30, 10));
    assert_eq!(d.rpc_auth_max_message_bytes, 4096);
    let s = Settings::from_toml(
        "rpc_max_connections = 5\nrpc_max_connections_per_ip = 0\nrpc_message_timeout = 2\n\
         rpc_auth_timeout = 0\nrpc_auth_max_message_bytes = 100\n",
    )
    .unwrap();
    assert_eq!(
        (s.rpc_max_connections, s.rpc_max_connections_per_ip),
        (5, 0)
    );
    assert_eq!((s.rpc_message_timeout, s.rpc_auth_timeout), (2, 0));
    assert_eq!(s.rpc_auth_max_message_bytes, 100);
    let args = ServeArgs {
        rpc_max_connections_per_ip: Some(3),
        rpc_auth_max_message_bytes: Some(200),
        ..ServeArgs::default()
    };
    let s = Settings::resolve(&args).unwrap();
    assert_eq!(
        (s.rpc_max_connections_per_ip, s.rpc_auth_max_message_bytes),
        (3, 200)
    );
    assert_eq!(s.rpc_max_connections, 1024);
}

#[test]
fn unknown_keys_are_rejected() {
    let err = Settings::from_toml("bogus = 1").unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
}

/// The text of one setting's value in a flag or variable: what the file holds, unquoted,
/// lists comma-separated.
fn flag_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(flag_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Every setting changed from its default, and each one's flag text.
fn every_setting_changed() -> (Settings, Vec<(&'static str, String)>) {
    let changed = Settings::default().others();
    let table = toml::Table::try_from(&changed).unwrap();
    let texts = Settings::NAMES
        .iter()
        .map(|name| (*name, flag_text(&table[*name])))
        .collect();
    (changed, texts)
}

fn serve_command() -> clap::Command {
    <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"))
}

fn resolve_matches(m: &clap::ArgMatches) -> Settings {
    let args = <ServeArgs as clap::FromArgMatches>::from_arg_matches(m).unwrap();
    Settings::resolve(&args).unwrap()
}

/// Set by [`every_setting_round_trips_through_flag_env_and_toml`] for the copy of this test
/// binary that reads the environment (a test cannot set its own: that is `unsafe`).
const ENV_CHILD: &str = "WSPUSH_TEST_ENV_CHILD";

#[test]
fn every_setting_round_trips_through_flag_env_and_toml() {
    let (changed, texts) = every_setting_changed();
    assert_ne!(changed, Settings::default());
    assert_eq!(texts.len(), Settings::NAMES.len());
    let cmd = serve_command();
    for name in Settings::NAMES {
        let arg = cmd.get_arguments().find(|a| a.get_id() == name).unwrap();
        assert_eq!(arg.get_long(), Some(flag_of(name).as_str()), "{name}");
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some(env_of(name).as_str()),
            "{name}"
        );
    }
    assert_eq!(
        (flag_of("queue_bytes"), env_of("queue_bytes")),
        ("queue-bytes".to_owned(), "WSPUSH_QUEUE_BYTES".to_owned())
    );

    // The file: every key written, and read back.
    let text = toml::to_string(&changed).unwrap();
    let table: toml::Table = text.parse().unwrap();
    for name in Settings::NAMES {
        assert!(table.contains_key(*name), "{name}: {text}");
    }
    assert_eq!(Settings::from_toml(&text).unwrap(), changed);

    // The flags, all at once (some require each other).
    let mut argv = vec!["serve".to_owned()];
    for (name, value) in &texts {
        argv.push(format!("--{}={value}", flag_of(name)));
    }
    assert_eq!(
        resolve_matches(&serve_command().try_get_matches_from(&argv).unwrap()),
        changed
    );

    // The environment, in a copy of this binary running only `env_child`.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child.args(["--exact", "config::tests::env_child", "--nocapture"]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WSPUSH_") {
            child.env_remove(key);
        }
    }
    for (name, value) in &texts {
        child.env(env_of(name), value);
    }
    let out = child.env(ENV_CHILD, "1").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}

/// Resolves the settings from the environment alone; run by the round-trip test.
#[test]
fn env_child() {
    if std::env::var_os(ENV_CHILD).is_none() {
        return;
    }
    let (changed, _) = every_setting_changed();
    let m = serve_command().try_get_matches_from(["serve"]).unwrap();
    assert_eq!(resolve_matches(&m), changed);
}

#[test]
fn a_parsed_flag_beats_the_file_and_the_file_beats_the_default() {
    let dir = std::env::temp_dir().join(format!("wspush-config-flag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wspush.toml");
    std::fs::write(&file, "queue_bytes = 4096\nhistory_len = 7\n").unwrap();
    let m = serve_command()
        .try_get_matches_from([
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--queue-bytes",
            "8192",
        ])
        .unwrap();
    let s = resolve_matches(&m);
    assert_eq!((s.queue_bytes, s.history_len), (8192, 7));
    // A bare `--rpc-insecure` means true.
    let m = serve_command()
        .try_get_matches_from(["serve", "--rpc-insecure"])
        .unwrap();
    assert!(resolve_matches(&m).rpc_insecure);
    std::fs::remove_dir_all(&dir).unwrap();
}
