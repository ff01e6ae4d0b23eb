//! `tgwa fake <verb>` from outside the process: the built `tgwa run` over the fake WhatsApp
//! (a fake build), driven through its control socket, and each verb's exit code and effect.
//! Without the `insecure-fake-whatsapp` feature only the refusal is checked.

#[cfg(not(feature = "insecure-fake-whatsapp"))]
#[test]
fn a_build_without_the_fake_says_so_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .args(["fake", "sent"])
        .current_dir(dir.path())
        .env_clear()
        .env("TGWA_DATA_DIR", dir.path().join("data"))
        .env("TGWA_MASTER_DB", dir.path().join("bot_data.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no fake WhatsApp") && err.contains("insecure-fake-whatsapp"),
        "{err}"
    );
}

#[cfg(feature = "insecure-fake-whatsapp")]
#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
#[cfg(feature = "insecure-fake-whatsapp")]
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

#[cfg(feature = "insecure-fake-whatsapp")]
mod with_fake {
    use super::{fake_telegram, support};
    use std::path::Path;
    use std::process::{Child, Command, Output};
    use std::time::{Duration, Instant};

    use fake_telegram::FakeTelegram;
    use serde_json::Value;
    use support::app::{env_for, spawn_binary, WAIT};

    const A: i64 = 7_800_001;
    const B: i64 = 7_800_002;
    const C: i64 = 7_800_003;
    const A_PHONE: &str = "6281234567101";
    const B_PHONE: &str = "6281234567102";
    const C_PHONE: &str = "6281234567103";

    fn fake_env() -> Vec<(String, String)> {
        vec![
            ("TGWA_WA_BACKEND".into(), "fake".into()),
            ("RUST_LOG".into(), "warn".into()),
        ]
    }

    /// `tgwa fake <args>` on the data directory under `dir`.
    fn fake(dir: &Path, api: &str, args: &[&str]) -> Output {
        support::app::tgwa_fake(dir, api, &fake_env(), args)
    }

    fn code(out: &Output) -> i32 {
        out.status.code().unwrap_or(-1)
    }

    fn text(out: &Output) -> String {
        format!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Runs `tgwa fake <args>` until it exits `want`, within `WAIT`.
    fn until_exit(dir: &Path, api: &str, args: &[&str], want: i32) -> Output {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = fake(dir, api, args);
            if code(&out) == want {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "{args:?} never exited {want}: {}",
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn accounts_status(dir: &Path, api: &str, phone: &str) -> Option<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_tgwa"))
            .args(["accounts", "--json"])
            .current_dir(dir)
            .env_clear()
            .envs(env_for(dir, api, &fake_env()))
            .output()
            .expect("tgwa accounts");
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.iter().find_map(|a| {
            a.to_string()
                .contains(&phone[phone.len() - 4..])
                .then(|| a["status"].as_str().unwrap_or("").to_string())
        })
    }

    /// Waits until `phone`'s account leaves `active`; returns its status.
    fn until_not_active(dir: &Path, api: &str, phone: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match accounts_status(dir, api, phone) {
                Some(s) if s != "active" => return s,
                other => assert!(Instant::now() < deadline, "{phone} stayed {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    async fn pair(tg: &FakeTelegram, user: i64, phone: &str) {
        let mark = tg.mark();
        tg.push_message(user, &format!("/pair {phone}"));
        tg.wait_for_text_to_after(mark, user, "Terhubung sebagai", WAIT).await;
    }

    /// Asks `/status` until `user`'s active account shows as connected, within `WAIT`.
    async fn until_connected(tg: &FakeTelegram, user: i64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mark = tg.mark();
            tg.push_message(user, "/status");
            let reply = tg.wait_for_text_to_after(mark, user, "", WAIT).await;
            if reply.text.contains("🟢 terhubung") {
                return;
            }
            assert!(Instant::now() < deadline, "never connected: {}", reply.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn say(tg: &FakeTelegram, user: i64, text: &str, want: &str) {
        let mark = tg.mark();
        tg.push_message(user, text);
        tg.wait_for_text_to_after(mark, user, want, WAIT).await;
    }

    /// Presses the newest button labelled `label` in `user`'s chat and waits for `want`.
    async fn tap(tg: &FakeTelegram, user: i64, label: &str, want: &str) {
        let (mid, data) = tg
            .sent_to(user)
            .iter()
            .rev()
            .find_map(|m| m.button_data(label).map(|d| (m.message_id, d)))
            .unwrap_or_else(|| panic!("no button {label:?}"));
        let mark = tg.mark();
        tg.push_callback(user, mid, &data);
        tg.wait_for_text_to_after(mark, user, want, WAIT).await;
    }

    fn stop(mut child: Child) {
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "tgwa did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn without_a_running_fake_or_with_bad_arguments_it_exits_2() {
        let dir = tempfile::tempdir().unwrap();
        let api = "http://127.0.0.1:9";
        let out = fake(dir.path(), api, &["sent"]);
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no fake WhatsApp is running"),
            "{}",
            text(&out)
        );
        for args in [
            &["rate-limit", A_PHONE, "bogus", "--for", "5"][..],
            &["ban", "not-a-number"],
            &["ban", A_PHONE, "--temporary", "5", "--lock"],
            &["timelock", A_PHONE],
            &["dance"],
        ] {
            let out = fake(dir.path(), api, args);
            assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_verb_acts_on_the_fake_of_the_running_bot() {
        let tg = FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap();
        let (d, api) = (dir.path(), tg.url());
        let child = spawn_binary(d, &api, &fake_env());
        pair(&tg, A, A_PHONE).await;
        let socket = d.join("DB USER TELEGRAM/.fake/ctl.sock");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

        // A person writes to the account (in any number format); a number without WhatsApp
        // cannot, and the world refuses an unknown number.
        let out = fake(d, &api, &["send", "--from", "0812-3456-7199", "--to", A_PHONE, "halo"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("sent"), "{}", text(&out));
        let out = fake(d, &api, &["send", "--from", "6281234567100", "--to", A_PHONE, "halo"]);
        assert_eq!(code(&out), 1, "{}", text(&out));
        let out = fake(d, &api, &["ban", "6281299999999"]);
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not on the fake"),
            "{}",
            text(&out)
        );

        // What the account sends shows in `sent --json`.
        say(&tg, A, "/menu", "Menu utama").await;
        tap(&tg, A, "Pesan", "Pesan</b>").await;
        tap(&tg, A, "Siaran", "teks pesan siaran").await;
        say(&tg, A, "Promo", "Kirim ke mana").await;
        let mark = tg.mark();
        tg.push_document(A, "numbers.txt", b"6285700000017\n6285700000027".to_vec(), None);
        tg.wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT).await;
        tap(&tg, A, "Mulai", "berjalan").await;
        let deadline = Instant::now() + WAIT;
        loop {
            let out = fake(d, &api, &["sent", "--json"]);
            assert_eq!(code(&out), 0, "{}", text(&out));
            let v: Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
            let sends = v["data"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter(|m| m["from"] == A_PHONE && m["text"] == "Promo")
                        .count()
                })
                .unwrap_or(0);
            if sends == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "the sends never showed: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }

        for args in [
            &["timelock", A_PHONE, "--for", "60"][..],
            &["rate-limit", A_PHONE, "usync", "--for", "60"],
            &["rate-limit", A_PHONE, "groups", "--for", "60"],
            &["offline", A_PHONE],
            &["online", A_PHONE],
        ] {
            let out = fake(d, &api, args);
            assert_eq!(code(&out), 0, "{args:?}: {}", text(&out));
        }
        // Back online, the session logs in again; then the device logs in elsewhere, and the
        // owner hears the session was taken over.
        let mark = tg.mark();
        until_exit(d, &api, &["replace", A_PHONE], 0);
        tg.wait_for_text_to_after(mark, A, "klien lain", WAIT).await;

        // A ban ends the stream and later logins fail: the account is no longer active.
        pair(&tg, B, B_PHONE).await;
        let out = fake(d, &api, &["ban", B_PHONE]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let status = until_not_active(d, &api, B_PHONE);
        assert!(status == "banned" || status == "logged_out", "{status}");

        // The phone removes the linked device: logged out, and there is nothing left to unlink.
        // Unlinked once the session is logged in (after pairing the client restarts its
        // stream and logs in again; an unlink inside that window is a different story).
        pair(&tg, C, C_PHONE).await;
        until_connected(&tg, C).await;
        let out = fake(d, &api, &["unlink", "+62 812-3456-7103", "--json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(until_not_active(d, &api, C_PHONE), "logged_out");
        let out = fake(d, &api, &["unlink", C_PHONE]);
        assert_eq!(code(&out), 1, "{}", text(&out));

        stop(child);
        assert!(!socket.exists(), "the socket is removed at exit");
        let out = fake(d, &api, &["sent"]);
        assert_eq!(code(&out), 2, "{}", text(&out));
    }
}
