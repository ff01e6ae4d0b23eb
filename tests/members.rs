//! Issue 19: member exports (.csv and .vcf), join requests with the "approve new members"
//! toggle, and account nicknames, driven from Telegram as users would over the simulator.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::time::Duration;

use support::app::{TestBot, WAIT};
use tgwa::bot::callback::{AdminCb, Cb};
use tgwa::ids::{AccountId, PhoneNumber};
use tgwa::wa::{GroupId, PersonId};

const A: i64 = 6_100_001;
const B: i64 = 6_100_002;
const A_PHONE: &str = "6281234562001";
const A2_PHONE: &str = "6281234562011";
const B_PHONE: &str = "6281234562002";
/// An operator (`TGWA_ADMIN_IDS`).
const OPERATOR: i64 = 6_100_009;

/// Creates a group named `name` (alone) through the groups menu and returns its ID.
async fn create_group(bot: &TestBot, user: i64, name: &str) -> GroupId {
    bot.say(user, "/menu", "Menu utama").await;
    bot.tap(user, "👥 Grup", "Anda admin").await;
    bot.tap(user, "Buat grup", "pola nama").await;
    bot.say(user, &format!("{name}\n1"), "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(user, "Mulai");
    bot.tg
        .wait_for_text_to_after(mark, user, "Laporan pekerjaan", Duration::from_secs(60))
        .await;
    let c = rusqlite::Connection::open(bot.world_db()).unwrap();
    let jid: String = c
        .query_row("SELECT jid FROM groups WHERE subject = ?1", [name], |r| r.get(0))
        .unwrap();
    GroupId::parse(&jid).unwrap()
}

/// Opens the page of the group named `name` from `/groups`; returns the page.
async fn open_group(bot: &TestBot, user: i64, name: &str, want: &str) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, "/groups");
    let list = bot.tg.wait_for_button_after(mark, user, name, WAIT).await;
    let data = list.button_data(name).expect("group button");
    let mark = bot.tg.mark();
    bot.tg.push_callback(user, list.message_id, &data);
    bot.tg.wait_for_text_to_after(mark, user, want, WAIT).await
}

/// The account ID of `phone`.
fn account_id(bot: &TestBot, phone: &str) -> AccountId {
    AccountId::new(bot.account_row(phone).expect("account").0).unwrap()
}

/// Phone numbers of a group's members in the simulated world.
async fn member_digits(bot: &TestBot, g: &GroupId) -> Vec<String> {
    let c = rusqlite::Connection::open(bot.world_db()).unwrap();
    let mut st = c
        .prepare("SELECT phone FROM members WHERE jid = ?1 ORDER BY phone")
        .unwrap();
    st.query_map([g.as_str()], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Parses CSV text (RFC 4180: quoted fields with doubled quotes, newlines inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

/// The cards of a vCard file: each as `(property line, value)` pairs, unfolded and with
/// text values unescaped. Checks CRLF line ends and the 75-octet fold limit on the way.
fn parse_vcf(text: &str) -> Vec<Vec<(String, String)>> {
    assert!(text.ends_with("\r\n"), "vCard lines end in CRLF");
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "a line over 75 octets: {line:?}");
        assert!(!line.contains('\n'), "a bare LF: {line:?}");
    }
    let unfolded = text.replace("\r\n ", "");
    let mut cards = Vec::new();
    let mut card = Vec::new();
    for line in unfolded.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').expect("name:value");
        let mut v = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') | Some('N') => v.push('\n'),
                    Some(o) => v.push(o),
                    None => {}
                }
            } else {
                v.push(c);
            }
        }
        card.push((name.to_string(), v));
        if line == "END:VCARD" {
            cards.push(std::mem::take(&mut card));
        }
    }
    cards
}

/// Waits until `user` has a document whose name ends in `ext` sent after `mark`.
async fn document(bot: &TestBot, user: i64, mark: fake_telegram::Mark, ext: &str) -> fake_telegram::Sent {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let before = bot.tg.sent_to(user);
        if let Some(d) = before
            .into_iter()
            .rev()
            .find(|m| m.file_name.as_deref().is_some_and(|n| n.ends_with(ext)))
        {
            if bot.tg.calls_after(mark).iter().any(|c| c.method == "senddocument") {
                return d;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no {ext} document");
        bot.tg.wait_for_method_after(mark, "senddocument", WAIT).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Names that spreadsheets and contact cards must carry intact.
fn tricky_name(i: usize) -> String {
    match i % 6 {
        0 => format!("Siti Nurhaliza 🌸 {i}"),
        1 => format!("Budi, \"Pak RT\" {i}"),
        2 => format!("Ayu; Dewi {i}"),
        3 => format!("Baris\nDua {i}"),
        4 => format!("Śri Wahyuni — Ibu-ibu PKK {i} 👩‍👩‍👧 Kampung Durian Runtuh Sejahtera"),
        _ => format!("=1+2 {i}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_member_export_opens_in_a_spreadsheet_and_a_phone() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    let g = create_group(&bot, A, "Arisan Ibu-Ibu 🌸").await;
    // 298 numbers with names (every fifth without one), one member known only by LID.
    let mut people: Vec<(String, Option<String>)> = (0..298)
        .map(|i| (format!("62857{:07}9", i), (i % 5 != 2).then(|| tricky_name(i))))
        .collect();
    people.push(("201234567890123@lid".into(), Some("Rahasia 🤫".into())));
    tgwa::wa::sim::seed_members(&bot.world_db(), &g, &people).unwrap();

    let page = open_group(&bot, A, "Arisan Ibu-Ibu", "Anggota").await;
    assert!(page.button_data("Ekspor anggota").is_some());
    let mark = bot.tg.mark();
    bot.press(A, "Ekspor anggota");
    let done = bot.tg.wait_for_text_to_after(mark, A, "300 anggota", WAIT).await;
    assert!(done.text.contains("LID"), "{}", done.text);
    assert!(done.button_data("Kembali").is_some(), "a way back");
    let csv = document(&bot, A, mark, ".csv").await;
    let vcf = document(&bot, A, mark, ".vcf").await;

    // CSV: BOM, Indonesian header, 300 rows, names intact through quoting.
    let bytes = csv.bytes.clone().unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 301, "header + 300");
    assert_eq!(
        rows[0],
        ["Nomor", "Nama WhatsApp", "Admin", "LID (nomor disembunyikan)"]
    );
    assert!(rows.iter().all(|r| r.len() == 4), "every row has 4 cells");
    let by_number = |n: &str| rows.iter().find(|r| r[0] == n).cloned();
    let me = by_number(A_PHONE).expect("the creator");
    assert_eq!(me[2], "ya (pembuat)");
    for i in [0usize, 1, 3, 4, 8] {
        let r = by_number(&format!("62857{:07}9", i)).expect("member row");
        assert_eq!(r[1], tricky_name(i), "row {i}");
        assert_eq!(r[2], "tidak");
    }
    // A name that a spreadsheet would run as a formula is made plain text.
    assert_eq!(by_number("6285700000059").unwrap()[1], "'=1+2 5");
    assert_eq!(by_number("6285700000029").unwrap()[1], "", "no name known");
    let lid = rows.iter().find(|r| r[3] == "201234567890123@lid").expect("LID row");
    assert_eq!(lid[0], "", "a LID is never written as a number");
    assert_eq!(lid[1], "Rahasia 🤫");

    // VCF: one card per member, FN = name or number, TEL only for real numbers.
    let cards = parse_vcf(&String::from_utf8(vcf.bytes.clone().unwrap()).unwrap());
    assert_eq!(cards.len(), 300);
    let prop = |card: &Vec<(String, String)>, name: &str| card.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    for card in &cards {
        assert_eq!(prop(card, "VERSION").as_deref(), Some("3.0"));
        assert!(prop(card, "FN").is_some_and(|f| !f.is_empty()));
        assert!(prop(card, "N").is_some());
    }
    let tel_cards: Vec<_> = cards.iter().filter(|c| prop(c, "TEL;type=CELL").is_some()).collect();
    assert_eq!(tel_cards.len(), 299, "every member with a number");
    let card_of = |tel: &str| {
        cards
            .iter()
            .find(|c| prop(c, "TEL;type=CELL").as_deref() == Some(tel))
            .cloned()
            .unwrap()
    };
    for i in [0usize, 1, 3, 4] {
        assert_eq!(
            prop(&card_of(&format!("+62857{:07}9", i)), "FN").unwrap(),
            tricky_name(i)
        );
    }
    assert_eq!(prop(&card_of("+6285700000029"), "FN").unwrap(), "+6285700000029");
    let lid_card = cards.iter().find(|c| prop(c, "TEL;type=CELL").is_none()).unwrap();
    assert_eq!(prop(lid_card, "FN").unwrap(), "Rahasia 🤫");
    assert!(prop(lid_card, "NOTE").unwrap().contains("201234567890123@lid"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_group_in_one_csv_with_a_group_column() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    let g1 = create_group(&bot, A, "Grup Satu").await;
    let g2 = create_group(&bot, A, "Grup Dua").await;
    // A group of B's where A is a plain member is not exported.
    let g3 = create_group(&bot, B, "Grup Orang Lain").await;
    tgwa::wa::sim::seed_members(&bot.world_db(), &g1, &[("6285711111119".into(), Some("Ani".into()))]).unwrap();
    tgwa::wa::sim::seed_members(&bot.world_db(), &g3, &[(A_PHONE.into(), None)]).unwrap();
    let _ = g2;
    bot.say(A, "/groups", "Anda admin").await;
    let mark = bot.tg.mark();
    bot.press(A, "Ekspor anggota grup admin");
    bot.tg.wait_for_text_to_after(mark, A, "kolom Grup", WAIT).await;
    let csv = document(&bot, A, mark, ".csv").await;
    let text = String::from_utf8(csv.bytes.clone().unwrap()[3..].to_vec()).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows[0][..3], ["Grup", "ID grup", "Nomor"]);
    assert_eq!(rows.len(), 1 + 2 + 1, "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r[0] == "Grup Satu" && r[2] == "6285711111119" && r[3] == "Ani"));
    assert!(rows.iter().any(|r| r[0] == "Grup Dua" && r[1] == g2.as_str()));
    assert!(!rows.iter().any(|r| r[0] == "Grup Orang Lain"));
    bot.stop().await;
}

/// Five people waiting to join `g`, oldest first.
fn five_requests(bot: &TestBot, g: &GroupId) -> Vec<(String, String)> {
    let people: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("628571234500{i}"), format!("Peminta {i}")))
        .collect();
    for (who, name) in &people {
        tgwa::wa::sim::seed_join_request(&bot.world_db(), g, who, Some(name)).unwrap();
    }
    people
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_three_of_five_adds_exactly_those_and_reject_all_empties_the_rest() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    let g = create_group(&bot, A, "Komunitas Batik").await;

    // The toggle shows its state and flips it.
    let page = open_group(&bot, A, "Komunitas Batik", "Anggota").await;
    assert!(
        page.button_data("Setujui anggota baru: OFF").is_some(),
        "{:?}",
        page.buttons()
    );
    bot.tap(A, "Setujui anggota baru: OFF", "Anggota").await;
    let page = bot
        .tg
        .sent_to(A)
        .into_iter()
        .rev()
        .find(|m| m.button_data("Setujui anggota baru").is_some())
        .unwrap();
    assert!(
        page.button_data("✅ Setujui anggota baru: ON").is_some(),
        "{:?}",
        page.buttons()
    );

    // Another account using the link now waits for approval instead of joining.
    bot.pair(B, B_PHONE).await;
    let shown = bot.tap(A, "Tautan undangan", "chat.whatsapp.com").await;
    let link = shown
        .text
        .split(['>', '<'])
        .find(|p| p.starts_with("https://chat.whatsapp.com/"))
        .unwrap()
        .to_string();
    bot.tap(A, "Kembali", "Anggota").await;
    bot.say(B, "/menu", "Menu utama").await;
    bot.tap(B, "👥 Grup", "Anda admin").await;
    bot.tap(B, "Gabung grup", "Tempel tautan").await;
    bot.say(B, &link, "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(B, "Mulai");
    bot.tg
        .wait_for_text_to_after(mark, B, "Laporan pekerjaan", Duration::from_secs(60))
        .await;
    assert_eq!(
        tgwa::wa::sim::read_join_requests(&bot.world_db(), &g).unwrap(),
        vec![B_PHONE.to_string()]
    );
    let people = five_requests(&bot, &g);
    let before = member_digits(&bot, &g).await;
    assert!(!before.contains(&B_PHONE.to_string()));
    let list = bot.tap(A, "Permintaan bergabung", "Permintaan bergabung</b>: 6").await;
    for (_, name) in &people {
        assert!(list.text.contains(name.as_str()), "{}", list.text);
    }
    assert!(list.button_data("Kembali").is_some(), "a way back");
    for i in [1usize, 3, 5] {
        bot.tap(A, &format!("✅ Peminta {i}"), "1 permintaan disetujui").await;
    }
    let after = member_digits(&bot, &g).await;
    let added: Vec<_> = after.iter().filter(|p| !before.contains(p)).cloned().collect();
    let mut want: Vec<String> = [1usize, 3, 5].iter().map(|i| people[i - 1].0.clone()).collect();
    want.sort();
    assert_eq!(added, want, "exactly the three approved");
    let mut waiting = tgwa::wa::sim::read_join_requests(&bot.world_db(), &g).unwrap();
    waiting.sort();
    let mut want_waiting = vec![people[1].0.clone(), people[3].0.clone(), B_PHONE.to_string()];
    want_waiting.sort();
    assert_eq!(waiting, want_waiting, "the other two (and B) still wait");

    // Reject all asks first; "no" changes nothing, "yes" empties the list.
    bot.tap(A, "Tolak semua", "Tolak semua 3 permintaan").await;
    bot.tap(A, "Tidak", "Permintaan bergabung</b>: 3").await;
    bot.tap(A, "Tolak semua", "Tolak semua 3 permintaan").await;
    bot.tap(A, "Ya", "3 permintaan ditolak").await;
    assert!(tgwa::wa::sim::read_join_requests(&bot.world_db(), &g)
        .unwrap()
        .is_empty());
    assert_eq!(member_digits(&bot, &g).await, after, "rejected people did not join");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_not_offered_join_requests_and_forged_buttons_are_refused() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    let g = create_group(&bot, A, "Grup RT 05").await;
    tgwa::wa::sim::seed_members(&bot.world_db(), &g, &[(B_PHONE.into(), None)]).unwrap();
    five_requests(&bot, &g);

    // B is a plain member: the export, yes; requests and the toggle, no.
    let page = open_group(&bot, B, "Grup RT 05", "Anggota").await;
    assert!(page.button_data("Ekspor anggota").is_some());
    assert!(
        page.button_data("Permintaan bergabung").is_none(),
        "{:?}",
        page.buttons()
    );
    assert!(
        page.button_data("Setujui anggota baru").is_none(),
        "{:?}",
        page.buttons()
    );

    // Buttons B could be sent for B's own account still need admin rights.
    let b_acc = account_id(&bot, B_PHONE);
    let a_acc = account_id(&bot, A_PHONE);
    let who = PersonId::Phone(PhoneNumber::from_digits("6285712345001").unwrap());
    for cb in [
        Cb::JoinRequests(b_acc, g.clone(), 0),
        Cb::JoinAnswer(b_acc, g.clone(), who.clone(), true),
        Cb::JoinAnswerAllYes(b_acc, g.clone(), true),
        Cb::JoinApproval(b_acc, g.clone(), true),
    ] {
        let answer = bot.callback(B, &cb).await;
        assert!(
            answer["text"].as_str().unwrap().contains("Hanya admin grup"),
            "{cb:?}: {answer}"
        );
    }
    // Buttons naming A's account are not B's to press, signed for B or not.
    let answer = bot.callback(B, &Cb::JoinAnswerAllYes(a_acc, g.clone(), true)).await;
    assert!(
        answer["text"].as_str().unwrap().contains("bukan milik Anda"),
        "{answer}"
    );
    let codec = tgwa::bot::callback::CallbackCodec::load_or_create(&bot.data_dir().join(".secret")).unwrap();
    let for_a = codec.encode(
        tgwa::ids::TelegramId::new(A).unwrap(),
        &Cb::JoinAnswerAllYes(a_acc, g.clone(), true),
    );
    let id = bot.tg.push_callback(B, 1, &for_a);
    let answer = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(
        answer["text"].as_str().unwrap().contains("bukan milik Anda"),
        "{answer}"
    );

    assert_eq!(tgwa::wa::sim::read_join_requests(&bot.world_db(), &g).unwrap().len(), 5);
    let members = member_digits(&bot, &g).await;
    assert_eq!(members.len(), 2, "{members:?}");
    let approval: bool = rusqlite::Connection::open(bot.world_db())
        .unwrap()
        .query_row("SELECT approval FROM groups WHERE jid = ?1", [g.as_str()], |r| r.get(0))
        .unwrap();
    assert!(!approval);
    bot.stop().await;
}

/// Opens the active account's page through the menu.
async fn open_account_page(bot: &TestBot, user: i64, want: &str) -> fake_telegram::Sent {
    bot.say(user, "/menu", "Menu utama").await;
    bot.tap(user, "Pengaturan akun", want).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nickname_is_set_shown_next_to_the_number_and_cleared() {
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &OPERATOR.to_string())]).await;
    bot.pair(A, A2_PHONE).await;
    bot.pair(A, A_PHONE).await;
    open_account_page(&bot, A, "Terakhir diperbarui").await;
    bot.tap(A, "Nama panggilan", "1–32 karakter").await;
    // Refused, each with its reason, and asked again.
    bot.say(A, &"x".repeat(33), "terlalu panjang (maksimal 32 karakter)")
        .await;
    bot.say(A, "Toko\u{7}Batik", "harus satu baris").await;
    let saved = bot.say(A, "  Toko <Batik> & Co  ", "Nama panggilan disimpan").await;
    assert!(
        saved.text.contains("Toko &lt;Batik&gt; &amp; Co ("),
        "escaped: {}",
        saved.text
    );
    let nick: Option<String> = bot
        .master()
        .query_row(
            "SELECT nickname FROM whatsapp_accounts WHERE phone_number = ?1",
            [A_PHONE],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(nick.as_deref(), Some("Toko <Batik> & Co"), "trimmed, stored as typed");

    // The account list, the account page, and the switch confirmation name it.
    bot.say(A, "/menu", "Toko &lt;Batik&gt; &amp; Co").await;
    let list = bot.tap(A, "👤 Akun", "Toko &lt;Batik&gt; &amp; Co (").await;
    assert!(list.button_data("Toko <Batik> & Co").is_some(), "{:?}", list.buttons());
    // Switch to the other account and back: the confirmation names the nickname.
    let other = list
        .buttons()
        .into_iter()
        .find(|(l, _)| !l.contains("Toko") && l.contains('+'))
        .unwrap();
    let mark = bot.tg.mark();
    bot.tg.push_callback(A, list.message_id, &other.1);
    bot.tg
        .wait_for_text_to_after(mark, A, "Terakhir diperbarui", WAIT)
        .await;
    bot.tap(A, "Pakai", "Akun aktif sekarang").await;
    let list = bot.tap(A, "Akun", "Toko &lt;Batik&gt;").await;
    let mine = list.button_data("Toko").unwrap();
    let mark = bot.tg.mark();
    bot.tg.push_callback(A, list.message_id, &mine);
    bot.tg
        .wait_for_text_to_after(mark, A, "Terakhir diperbarui", WAIT)
        .await;
    bot.tap(A, "Pakai", "Akun aktif sekarang <b>Toko &lt;Batik&gt; &amp; Co (")
        .await;

    // A job report names the account by its nickname too.
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    bot.tap(A, "Cek nomor", "Cek nomor").await;
    bot.say(A, "6285711111119", "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = bot
        .tg
        .wait_for_text_to_after(mark, A, "Laporan pekerjaan", Duration::from_secs(60))
        .await;
    assert!(report.text.contains("Toko &lt;Batik&gt; &amp; Co ("), "{}", report.text);

    // The operator's account page shows it next to the masked number, and the notice the
    // owner gets when the operator disconnects the session names it.
    let id = account_id(&bot, A_PHONE);
    let answer = bot.callback(OPERATOR, &Cb::Admin(AdminCb::Account(id))).await;
    assert!(answer["text"].is_null(), "no refusal: {answer}");
    let page = bot
        .tg
        .wait_for_text_to(OPERATOR, "Toko &lt;Batik&gt; &amp; Co (", WAIT)
        .await;
    assert!(
        !page.text.contains(A_PHONE),
        "the operator sees a masked number: {}",
        page.text
    );
    let generation: i64 = bot
        .master()
        .query_row(
            "SELECT generation FROM whatsapp_accounts WHERE id = ?1",
            [id.get()],
            |r| r.get(0),
        )
        .unwrap();
    let mark = bot.tg.mark();
    bot.callback(OPERATOR, &Cb::Admin(AdminCb::DisconnectYes(id, generation)))
        .await;
    bot.tg
        .wait_for_text_to_after(
            mark,
            A,
            "Operator memutus sesi WhatsApp akun <b>Toko &lt;Batik&gt; &amp; Co (",
            WAIT,
        )
        .await;

    // Cleared: the number alone again.
    open_account_page(&bot, A, "Terakhir diperbarui").await;
    bot.tap(A, "Hapus nama panggilan", "dihapus").await;
    let list = bot.tap(A, "Kembali", "Terakhir diperbarui").await;
    assert!(!list.text.contains("Toko"), "{}", list.text);
    bot.say(A, "/menu", "Menu utama").await;
    let list = bot.tap(A, "👤 Akun", "Akun").await;
    assert!(!list.text.contains("Toko"), "{}", list.text);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_screens_speak_english_with_a_way_back() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    let g = create_group(&bot, A, "English Club").await;
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Bahasa", "Pilih bahasa").await;
    bot.tap(A, "English", "Main menu").await;

    let page = open_group(&bot, A, "English Club", "Members").await;
    assert!(page.button_data("📤 Export members").is_some(), "{:?}", page.buttons());
    assert!(
        page.button_data("Approve new members: OFF").is_some(),
        "{:?}",
        page.buttons()
    );
    for i in 0..10 {
        let who = format!("62857999999{i:02}");
        tgwa::wa::sim::seed_join_request(&bot.world_db(), &g, &who, Some(&format!("Guest {i}"))).unwrap();
    }
    // Ten requests: eight on the first page, two on the second.
    let list = bot.tap(A, "🙋 Join requests", "Join requests</b>: 10").await;
    assert!(list.button_data("Approve all").is_some() && list.button_data("Reject all").is_some());
    assert_eq!(list.buttons().iter().filter(|(l, _)| l.contains("Guest")).count(), 8);
    assert!(list.button_data("1/2").is_some());
    let second = bot.tap(A, "▶️", "Join requests</b>: 10").await;
    assert_eq!(second.buttons().iter().filter(|(l, _)| l.contains("Guest")).count(), 2);
    assert!(second.button_data("◀️").is_some() && second.button_data("2/2").is_some());
    bot.tap(A, "Approve all", "Approve all 10 join requests?").await;
    bot.tap(A, "No", "Join requests</b>: 10").await;
    bot.tap(A, "⬅️ Back", "Members").await;
    let mark = bot.tg.mark();
    bot.press(A, "Export members");
    let done = bot.tg.wait_for_text_to_after(mark, A, "Exported 1 members", WAIT).await;
    assert!(done.button_data("Back").is_some());
    let csv = document(&bot, A, mark, ".csv").await;
    let text = String::from_utf8(csv.bytes.clone().unwrap()[3..].to_vec()).unwrap();
    assert!(
        text.starts_with("Number,WhatsApp name,Admin,LID (number hidden)\n"),
        "{text}"
    );

    bot.say(A, "/groups", "you are admin").await;
    bot.tap(A, "Export admin groups' members", "Group column").await;

    bot.say(A, "/menu", "Main menu").await;
    bot.tap(A, "Account settings", "Last updated").await;
    bot.tap(A, "Nickname", "1 to 32 characters").await;
    bot.say(A, &"y".repeat(40), "too long (at most 32 characters)").await;
    bot.say(A, "CS 2", "Nickname saved: CS 2 (").await;
    bot.tap(A, "Back", "CS 2 (").await;
    bot.tap(A, "Clear nickname", "Nickname of").await;
    bot.stop().await;
}

/// The same flows over the real adapter and the fake WhatsApp server, with the bot as a
/// separate process (`tgwa run` with `TGWA_WA_BACKEND=fake`), requests made with
/// `tgwa fake request-join`, and the outcome read back through the bot's own export.
#[cfg(feature = "insecure-fake-whatsapp")]
mod over_the_fake {
    use super::*;
    use std::path::Path;
    use std::process::Output;

    fn fake_env() -> Vec<(String, String)> {
        vec![
            ("TGWA_WA_BACKEND".into(), "fake".into()),
            ("RUST_LOG".into(), "error".into()),
        ]
    }

    /// `tgwa fake <args>` on the data directory under `dir`, until it succeeds.
    fn fake(dir: &Path, api: &str, args: &[&str]) -> Output {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let out = support::app::tgwa_fake(dir, api, &fake_env(), args);
            if out.status.success() {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tgwa fake {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    async fn say(tg: &fake_telegram::FakeTelegram, user: i64, text: &str, want: &str) -> fake_telegram::Sent {
        let mark = tg.mark();
        tg.push_message(user, text);
        tg.wait_for_text_to_after(mark, user, want, WAIT).await
    }

    async fn tap(tg: &fake_telegram::FakeTelegram, user: i64, label: &str, want: &str) -> fake_telegram::Sent {
        let msg = tg
            .sent_to(user)
            .into_iter()
            .rev()
            .find(|m| m.button_data(label).is_some())
            .unwrap_or_else(|| panic!("no button {label:?}"));
        let mark = tg.mark();
        tg.push_callback(user, msg.message_id, &msg.button_data(label).unwrap_or_default());
        tg.wait_for_text_to_after(mark, user, want, WAIT).await
    }

    /// Presses the newest button whose label and data satisfy `pick`.
    fn press(tg: &fake_telegram::FakeTelegram, user: i64, pick: impl Fn(&str, &str) -> bool) {
        let (mid, data) = tg
            .sent_to(user)
            .into_iter()
            .rev()
            .find_map(|m| {
                let b = m.buttons().into_iter().find(|(l, d)| pick(l, d))?;
                Some((m.message_id, b.1))
            })
            .expect("no such button");
        tg.push_callback(user, mid, &data);
    }

    async fn until_connected(tg: &fake_telegram::FakeTelegram, user: i64) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let page = say(tg, user, "/status", "Terakhir diperbarui").await;
            if page.text.contains("🟢 terhubung") {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never connected: {}", page.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The newest `.csv` sent to `user` after `mark`, parsed (BOM checked and dropped).
    async fn csv_after(tg: &fake_telegram::FakeTelegram, user: i64, mark: fake_telegram::Mark) -> Vec<Vec<String>> {
        tg.wait_for_method_after(mark, "senddocument", WAIT).await;
        let doc = tg
            .sent_to(user)
            .into_iter()
            .rev()
            .find(|m| m.file_name.as_deref().is_some_and(|n| n.ends_with(".csv")))
            .expect("a .csv");
        let bytes = doc.bytes.expect("bytes");
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        parse_csv(std::str::from_utf8(&bytes[3..]).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approving_three_of_five_over_the_fake_server() {
        let tg = fake_telegram::FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap();
        let (d, api) = (dir.path(), tg.url());
        let mut child = support::app::spawn_binary(d, &api, &fake_env());
        say(&tg, A, &format!("/pair {A_PHONE}"), "Terhubung sebagai").await;
        until_connected(&tg, A).await;

        // A group, made through the bot; its id from the admin-groups export.
        say(&tg, A, "/groups", "Anda admin").await;
        tap(&tg, A, "Buat grup", "pola nama").await;
        say(&tg, A, "Paguyuban Batik\n1", "Mulai pekerjaan ini").await;
        let mark = tg.mark();
        press(&tg, A, |label, _| label.contains("Mulai"));
        tg.wait_for_text_to_after(mark, A, "Laporan pekerjaan", Duration::from_secs(60))
            .await;
        say(&tg, A, "/groups", "Anda admin").await;
        let mark = tg.mark();
        tap(&tg, A, "Ekspor anggota grup admin", "kolom Grup").await;
        let rows = csv_after(&tg, A, mark).await;
        let gid = rows.iter().find(|r| r[0] == "Paguyuban Batik").expect("group row")[1].clone();

        // Approval on through the toggle, five people ask, three are approved.
        say(&tg, A, "/groups", "Anda admin").await;
        let page = tap(&tg, A, "Paguyuban Batik", "Anggota").await;
        assert!(
            page.button_data("Setujui anggota baru: OFF").is_some(),
            "{:?} {}",
            page.buttons(),
            page.text
        );
        tap(&tg, A, "Setujui anggota baru: OFF", "Anggota").await;
        assert!(tg
            .sent_to(A)
            .iter()
            .rev()
            .find_map(|m| m.button_data("✅ Setujui anggota baru: ON"))
            .is_some());
        let people: Vec<String> = (1..=5).map(|i| format!("628571234570{i}")).collect();
        for p in &people {
            fake(d, &api, &["request-join", &gid, p]);
        }
        tap(&tg, A, "Permintaan bergabung", "Permintaan bergabung</b>: 5").await;
        // Each requester's approve button, found by the number its data names (not by how
        // the number is displayed).
        for i in [0usize, 2, 4] {
            let mark = tg.mark();
            let code = format!(":p{}:1~", people[i]);
            press(&tg, A, |_, data| data.contains(&code));
            tg.wait_for_text_to_after(mark, A, "1 permintaan disetujui", WAIT).await;
        }
        let left = tap(&tg, A, "Kembali", "Anggota").await;
        assert!(left.text.contains("Anggota: 4"), "{}", left.text);
        let mark = tg.mark();
        tap(&tg, A, "Ekspor anggota", "4 anggota").await;
        let rows = csv_after(&tg, A, mark).await;
        let mut numbers: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
        numbers.sort();
        let mut want = vec![
            A_PHONE.to_string(),
            people[0].clone(),
            people[2].clone(),
            people[4].clone(),
        ];
        want.sort();
        assert_eq!(numbers, want, "exactly the three approved joined");

        // The other two still wait; reject all empties the list.
        tap(&tg, A, "Permintaan bergabung", "Permintaan bergabung</b>: 2").await;
        tap(&tg, A, "Tolak semua", "Tolak semua 2 permintaan").await;
        tap(&tg, A, "Ya", "2 permintaan ditolak").await;
        say(&tg, A, "/groups", "Anda admin").await;
        tap(&tg, A, "Paguyuban Batik", "Anggota: 4").await;
        tap(&tg, A, "Permintaan bergabung", "Permintaan bergabung</b>: 0").await;
        child.kill().ok();
        child.wait().ok();
    }
}
