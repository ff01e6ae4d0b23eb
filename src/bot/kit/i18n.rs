//! Every user-facing string, in Indonesian (the default) and English. One `match` per
//! language, so the compiler refuses a key that lacks a translation. Placeholders are
//! `{name}` and are filled by [`tr_with`]; values must already be HTML-escaped.

/// A user's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Bahasa Indonesia (default).
    Id,
    /// English.
    En,
}

impl Lang {
    /// The code stored in `telegram_users.language`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// From a stored code or Telegram's `language_code`; anything not English is Indonesian.
    pub fn from_code(code: &str) -> Self {
        if code.starts_with("en") {
            Lang::En
        } else {
            Lang::Id
        }
    }
}

/// The messages the bot says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Welcome,
    LoginPrompt,
    AccessDenied,
    PrivateOnly,
    Help,
    MenuTitle,
    MenuNoActive,
    BtnAccounts,
    BtnGroups,
    BtnMessages,
    BtnSettings,
    BtnLanguage,
    BtnHelp,
    BtnBack,
    BtnMenu,
    BtnCancel,
    BtnNewCode,
    BtnRetry,
    BtnPairAgain,
    BtnYes,
    BtnNo,
    BtnSwitch,
    BtnLogout,
    BtnRemove,
    BtnStatus,
    PairUsage,
    PairInvalid,
    PairUserFull,
    PairServerFull,
    PairOwnedByOther,
    PairAlreadyLinked,
    PairInProgress,
    PairRateLimited,
    PairCooldown,
    PairWrongNumber,
    PairLocked,
    PairFailedGeneric,
    PairCode,
    PairCountdown,
    PairSuccess,
    PairExpired,
    PairFailed,
    PairCancelled,
    QrUsage,
    QrCaption,
    AccountsTitle,
    AccountLine,
    AccountDetail,
    Switched,
    LogoutConfirm,
    LoggedOutDone,
    RemoveConfirm,
    RemovedDone,
    LanguageTitle,
    LanguageSet,
    StaleButton,
    NotYourAccount,
    NotConnected,
    Sorry,
    UnknownCommand,
    NoticeLoggedOut,
    NoticeBanned,
    NoticeReconnected,
    NoticeResumed,
    NoticeStreamReplaced,
    NoticeConnectFailures,
    NoticeConnectRefused,
    AdminRestoreSummary,
    Cancelled,
    NothingToCancel,
    PromptExpired,
    PromptCancelHint,
    StateConnected,
    StateConnecting,
    StateDisconnected,
    StateLoggedOut,
    StateBanned,
    StateUnpaired,
    StatePairing,
    StateStopped,
    ComingSoon,
    PairTakenOver,
    NoticeAccountBanned,
    NoticeAccountLocked,
    StateBannedForGood,
    StateReplaced,
    NoticeReachOutLimited,
    NoticeReachOutLimitedUntil,
    BtnReconnect,
    Reconnecting,
    BtnInbox,
    Suspended,
    NoticeSuspended,
    NoticeRestored,
    NotOnWhatsApp,
    NotInGroup,
    BtnGroupList,
    NoticeOperatorDisconnected,
    BtnReconnectAfterStop,
    ReconnectingAfterStop,
    NoticeOperatorPausedJobs,
    JobNowState,
    GroupNotAdminNote,
    GroupAdminOnly,
    // --- ways ---
    BtnLinkNumber,
    BtnOtherAccount,
    PromptClosed,
    NotConnectedOffline,
    BtnReport,
    BtnJobs,
    StatusRefreshed,
    // --- peer ---
    NoticeProxyFailed,
    AdminProxyFailed,
    // --- proxy2 ---
    PairProxyFailed,
}

/// A one-off text in both languages, for messages too specific for the [`Key`] table
/// (menu labels and replies of the groups and jobs screens).
pub fn t2(lang: Lang, id: &str, en: &str) -> String {
    match lang {
        Lang::En => en.to_string(),
        Lang::Id => id.to_string(),
    }
}

/// The text of `key` in `lang`.
pub fn tr(lang: Lang, key: Key) -> &'static str {
    match lang {
        Lang::Id => id(key),
        Lang::En => en(key),
    }
}

/// The text of `key` with `{name}` placeholders replaced.
pub fn tr_with(lang: Lang, key: Key, args: &[(&str, &str)]) -> String {
    let mut s = tr(lang, key).to_string();
    for (k, v) in args {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

fn id(key: Key) -> &'static str {
    use Key::*;
    match key {
        Welcome => "👋 <b>Selamat datang di tgwa!</b>\n\nBot ini menghubungkan akun WhatsApp Anda ke Telegram: kelola grup, tautan undangan, anggota, pesan, dan pekerjaan massal dari menu di sini. Setiap pengguna hanya melihat akunnya sendiri.",
        LoginPrompt => "🔐 Anda belum punya akun WhatsApp yang terhubung.\n\nKirim <code>/pair 08123456789</code> (nomor WhatsApp Anda) untuk mendapatkan kode pairing 8 karakter, atau <code>/qr 08123456789</code> untuk login dengan QR.",
        AccessDenied => "⛔ <b>AKSES DITOLAK</b>\n\nAnda belum memiliki akun WhatsApp yang terdaftar. Hubungkan akun dulu dengan <code>/pair 08123456789</code>.",
        PrivateOnly => "Silakan gunakan bot ini di chat pribadi.",
        Help => "<b>Bantuan</b>\n\n/start — sambutan dan menu\n/menu — menu utama\n/pair &lt;nomor&gt; — hubungkan nomor WhatsApp dengan kode pairing\n/qr &lt;nomor&gt; — hubungkan dengan kode QR\n/status — status akun aktif\n/accounts — daftar akun Anda dan ganti akun\n/groups — grup akun aktif\n/lang — ganti bahasa\n/cancel — batalkan input yang sedang berjalan\n/help — bantuan ini\n\nContoh nomor: <code>0812-3456-7890</code>, <code>+62 812 3456 7890</code>.",
        MenuTitle => "📱 <b>Menu utama</b>\n\nAkun aktif: <b>{phone}</b>\nStatus: {state}",
        MenuNoActive => "📱 <b>Menu utama</b>\n\nBelum ada akun aktif. Pilih akun di «Akun».",
        BtnAccounts => "👤 Akun",
        BtnGroups => "👥 Grup",
        BtnMessages => "✉️ Pesan",
        BtnSettings => "⚙️ Pengaturan akun",
        BtnLanguage => "🌐 Bahasa",
        BtnHelp => "❓ Bantuan",
        BtnBack => "⬅️ Kembali",
        BtnMenu => "🏠 Menu",
        BtnCancel => "✖️ Batal",
        BtnNewCode => "🔄 Kode baru",
        BtnRetry => "🔁 Coba lagi",
        BtnPairAgain => "🔗 Hubungkan lagi",
        BtnYes => "✅ Ya",
        BtnNo => "✖️ Tidak",
        BtnSwitch => "Pakai",
        BtnLogout => "🚪 Logout",
        BtnRemove => "🗑 Hapus",
        BtnStatus => "ℹ️ Status",
        PairUsage => "Kirim nomor WhatsApp Anda sekarang, misalnya <code>0812-3456-7890</code> atau <code>+62 812 3456 7890</code>.\n\nBisa juga sekaligus: <code>/pair 0812-3456-7890</code>",
        PairInvalid => "❌ Nomor <code>{input}</code> tidak valid: {reason}.\n\nContoh yang benar: <code>/pair 0812-3456-7890</code>",
        PairUserFull => "❌ Anda sudah mencapai batas {max} akun. Hapus salah satu akun di menu «Akun» dulu.",
        PairServerFull => "❌ Server sudah mencapai batas {max} akun. Hubungi admin.",
        PairOwnedByOther => "❌ Nomor ini tidak dapat ditautkan di sini. Jika ini nomor Anda, hubungi admin.",
        PairAlreadyLinked => "ℹ️ Nomor ini sudah terhubung ke akun Anda. Buka /accounts untuk memakainya.",
        PairInProgress => "⏳ Pairing lain sedang berjalan untuk Anda. Selesaikan atau batalkan dulu.",
        PairRateLimited => "⏳ WhatsApp membatasi permintaan kode untuk sementara. Coba lagi dalam {wait}.",
        PairCooldown => "⏳ Kode pairing terlalu sering diminta. Tunggu {wait} sebelum meminta kode lagi.",
        PairWrongNumber => "❌ Perangkat yang menautkan bukan nomor <b>{phone}</b>. Tautan itu sudah diputus dan tidak ada yang didaftarkan. Tautkan dari WhatsApp di HP dengan nomor {phone} itu sendiri.",
        PairLocked => "❌ Akun ini sedang dijalankan oleh proses lain di server.",
        PairFailedGeneric => "❌ Gagal meminta kode pairing: {reason}. Coba lagi sebentar lagi.",
        PairCode => "🔑 Kode pairing untuk <b>{phone}</b>:\n\n<code>{code}</code>\n\n1. Buka WhatsApp di ponsel\n2. Ketuk ⋮ / Pengaturan → <b>Perangkat tertaut</b>\n3. Ketuk <b>Tautkan perangkat</b> → <b>Tautkan dengan nomor telepon</b>\n4. Masukkan kode di atas (ketuk kode untuk menyalin)",
        PairCountdown => "⏱ Berlaku {left} lagi.",
        PairSuccess => "✅ Terhubung sebagai <b>{phone}</b>. Akun ini sekarang akun aktif Anda.",
        PairExpired => "⌛ Kode pairing untuk <b>{phone}</b> kedaluwarsa sebelum dimasukkan. Tidak ada yang didaftarkan. Minta kode baru dengan tombol di bawah.",
        PairFailed => "❌ Pairing <b>{phone}</b> gagal: {reason}. Tidak ada yang didaftarkan.",
        PairCancelled => "✖️ Pairing <b>{phone}</b> dibatalkan. Tidak ada yang didaftarkan.",
        QrUsage => "Kirim nomor WhatsApp yang akan men-scan QR sekarang, misalnya <code>0812-3456-7890</code>.\n\nBisa juga sekaligus: <code>/qr 0812-3456-7890</code>",
        QrCaption => "📷 Scan QR ini di WhatsApp → Perangkat tertaut → Tautkan perangkat, untuk <b>{phone}</b>. QR diperbarui otomatis.",
        AccountsTitle => "👤 <b>Akun Anda</b> ({count}/{max})",
        AccountLine => "{mark} <b>{phone}</b> — {state}",
        AccountDetail => "<b>{phone}</b>\nStatus: {state}\nTerakhir diperbarui: {updated}{error}",
        Switched => "✅ Akun aktif sekarang <b>{phone}</b>.",
        LogoutConfirm => "🚪 Logout <b>{phone}</b>? Perangkat akan dilepas dari WhatsApp dan sesi dipindahkan ke sampah. Data bot tetap ada sampai akun dihapus.",
        LoggedOutDone => "🚪 <b>{phone}</b> sudah logout. Hubungkan lagi dengan /pair kapan saja.",
        RemoveConfirm => "🗑 Hapus <b>{phone}</b> dari bot? Perangkat ini juga dilepas dari WhatsApp di ponsel (seperti Logout), sesi dihentikan, dan semua filenya dipindahkan ke folder sampah.",
        RemovedDone => "🗑 <b>{phone}</b> dihapus. Filenya disimpan di folder sampah server.",
        LanguageTitle => "🌐 Pilih bahasa:",
        LanguageSet => "✅ Bahasa diganti ke Bahasa Indonesia.",
        StaleButton => "Tombol ini sudah tidak berlaku. Buka /menu lagi.",
        NotYourAccount => "⛔ Akun itu bukan milik Anda.",
        NotConnected => "⚠️ Akun <b>{phone}</b> sedang tidak terhubung ke WhatsApp ({state}). Coba lagi nanti.",
        Sorry => "😔 Maaf, terjadi kesalahan. Sudah dicatat; coba lagi sebentar lagi.",
        UnknownCommand => "Perintah tidak dikenal. Lihat /help.",
        NoticeLoggedOut => "⚠️ Akun <b>{phone}</b> logout dari ponsel ({reason}). File sesi tetap disimpan. Hubungkan lagi bila perlu.",
        NoticeBanned => "🚫 Akun <b>{phone}</b> diblokir sementara oleh WhatsApp (alasan {reason}) sampai {until}.",
        NoticeReconnected => "🟢 Akun <b>{phone}</b> terhubung lagi setelah terputus {after}.",
        NoticeResumed => "🟢 Akun <b>{phone}</b> terhubung lagi di bot ini.",
        NoticeStreamReplaced => "⚠️ Akun <b>{phone}</b> dibuka oleh klien lain, jadi sesi di bot ini dihentikan.",
        NoticeConnectFailures => "⚠️ Akun <b>{phone}</b> gagal tersambung {count} kali berturut-turut: {reason}. Bot terus mencoba.",
        NoticeConnectRefused => "⛔ WhatsApp menolak koneksi akun <b>{phone}</b>: {reason}. Bot berhenti mencoba. Akun tetap terdaftar; bot mencoba lagi saat dijalankan ulang. Jika terus terjadi, hubungi admin.",
        AdminRestoreSummary => "🛠 <b>Startup selesai</b>\nAkun dipulihkan: {connected}/{total}\nGagal: {failed}\nLogout: {logged_out}\nDiblokir: {banned}\nTidak terpasang: {unpaired}\nPairing terputus dibersihkan: {stale}",
        Cancelled => "✖️ Dibatalkan.",
        NothingToCancel => "Tidak ada input yang sedang ditunggu.",
        PromptExpired => "⌛ Waktu untuk {action} sudah habis. Teks Anda tidak dipakai dan tidak ada yang dilakukan; mulai lagi dari menu.",
        PromptCancelHint => "/cancel atau tombol Batal untuk berhenti.",
        StateConnected => "🟢 terhubung",
        StateConnecting => "🟡 menyambung…",
        StateDisconnected => "🟠 terputus, mencoba lagi",
        StateLoggedOut => "🔴 logout",
        StateBanned => "🚫 diblokir sementara",
        StateUnpaired => "⚪ belum terpasang",
        StatePairing => "🔑 menunggu pairing",
        StateStopped => "⚫ berhenti",
        ComingSoon => "Fitur ini belum tersedia.",
        PairTakenOver => "❌ Pairing <b>{phone}</b> dibatalkan: pengguna Telegram lain meminta kode untuk nomor ini. Jika ini nomor Anda, minta kode baru dan masukkan di ponsel ini.",
        NoticeAccountBanned => "⛔ WhatsApp <b>memblokir</b> nomor <b>{phone}</b> ({reason}). Bot berhenti memakai nomor ini dan membatalkan pekerjaannya; pairing ulang tidak akan membantu. Bila menurut Anda ini keliru, buka WhatsApp di ponsel dan pilih <b>Support</b> / <b>Request a review</b> (minta peninjauan) untuk mengajukan banding.",
        NoticeAccountLocked => "⛔ WhatsApp <b>mengunci</b> nomor <b>{phone}</b> ({reason}). Bot berhenti memakai nomor ini dan membatalkan pekerjaannya. Buka WhatsApp di ponsel: ikuti langkah di layar untuk membuka kunci, atau pilih <b>Support</b> / <b>Request a review</b> untuk mengajukan banding.",
        StateBannedForGood => "⛔ diblokir WhatsApp",
        StateReplaced => "⚫ dibuka di perangkat lain",
        NoticeReachOutLimited => "✋ WhatsApp membatasi pesan dari nomor <b>{phone}</b> ke kontak baru (463). Pekerjaan #{job} tidak lagi mengirim ke nomor yang belum pernah menulis ke akun ini; nomor lain tetap dikirimi.",
        NoticeReachOutLimitedUntil => "✋ WhatsApp membatasi pesan dari nomor <b>{phone}</b> ke kontak baru (463) sampai {until}. Pekerjaan #{job} tidak lagi mengirim ke nomor yang belum pernah menulis ke akun ini; nomor lain tetap dikirimi.",
        BtnReconnect => "🔌 Sambungkan lagi di sini",
        Reconnecting => "🔌 Menyambungkan <b>{phone}</b> lagi di bot ini. Sesi di perangkat lain akan terputus.",
        BtnInbox => "📥 Pesan masuk",
        Suspended => "⛔ <b>AKSES DITOLAK</b>\n\nAkses Anda ke bot ini <b>ditangguhkan</b> oleh operator: perintah dan tombol ditolak sampai dipulihkan. Akun WhatsApp Anda tetap terdaftar. Hubungi operator bot bila ini keliru.",
        NoticeSuspended => "⛔ Operator bot <b>menangguhkan</b> akses Anda ke bot ini. Perintah dan tombol ditolak sampai dipulihkan; akun WhatsApp Anda tetap terdaftar.",
        NotOnWhatsApp => "❌ Nomor <b>{phone}</b> tidak terdaftar di WhatsApp; pesan tidak dikirim.",
        NotInGroup => "🚪 Akun <b>{phone}</b> tidak lagi menjadi anggota grup ini: sudah keluar atau dikeluarkan.",
        BtnGroupList => "📋 Daftar grup",
        NoticeOperatorDisconnected => "ℹ️ Operator memutus sesi WhatsApp akun <b>{phone}</b>. Akun tetap terdaftar; sambungkan lagi kapan saja dengan tombol di bawah.",
        BtnReconnectAfterStop => "🔌 Sambungkan lagi",
        ReconnectingAfterStop => "🔌 Menyambungkan <b>{phone}</b> lagi…",
        NoticeOperatorPausedJobs => "⏸ Operator menjeda pekerjaan massal akun <b>{phone}</b>. Lanjutkan dengan tombol «▶️ Lanjutkan» pada pesan kemajuan pekerjaan itu bila perlu.",
        JobNowState => "Pekerjaan ini sekarang {state}.",
        GroupNotAdminNote => "ℹ️ Akun ini bukan admin grup ini: tautan undangan, anggota, dan pengaturan grup hanya bisa diubah admin.",
        GroupAdminOnly => "⛔ Hanya admin grup yang bisa melakukan ini, dan akun ini bukan admin grup tersebut.",
        NoticeRestored => "✅ Akses Anda ke bot ini <b>dipulihkan</b> oleh operator. Kirim /menu untuk melanjutkan.",
        // --- ways ---
        BtnLinkNumber => "🔗 Hubungkan nomor",
        BtnOtherAccount => "🔄 Pakai akun lain",
        PromptClosed => "ℹ️ Pertanyaan yang menunggu jawaban Anda sudah ditutup; teks berikutnya tidak dipakai untuk itu.",
        NotConnectedOffline => "⚠️ Akun <b>{phone}</b> tidak terhubung ke WhatsApp ({state}). Hubungkan lagi, atau pakai akun lain.",
        BtnReport => "📄 Laporan",
        BtnJobs => "📋 Pekerjaan",
        StatusRefreshed => "ℹ️ Status diperbarui",
        // --- peer ---
        NoticeProxyFailed => "🧱 Akun <b>{phone}</b> tidak bisa tersambung karena <b>proxy</b>-nya ({proxy}): {reason}. Ini masalah proxy, bukan gangguan WhatsApp. Bot terus mencoba; operator sudah diberi tahu.",
        AdminProxyFailed => "🧱 Proxy akun <b>{phone}</b> (pemilik <code>{owner}</code>) gagal: {proxy}: {reason}. Periksa proxy itu atau ubah dengan <code>tgwa proxy</code>.",
        // --- proxy2 ---
        PairProxyFailed => "🧱 Pairing <b>{phone}</b> gagal karena <b>proxy</b> akun ini: {reason}. Ini masalah proxy, bukan gangguan WhatsApp; tidak ada yang didaftarkan. Minta operator memeriksa proxy itu (atau menggantinya dengan <code>/admin proxy</code> atau <code>tgwa proxy</code>), lalu coba lagi.",
    }
}

fn en(key: Key) -> &'static str {
    use Key::*;
    match key {
        Welcome => "👋 <b>Welcome to tgwa!</b>\n\nThis bot links your WhatsApp account to Telegram: manage groups, invite links, members, messages and bulk jobs from the menus here. Every user sees only their own accounts.",
        LoginPrompt => "🔐 You have no linked WhatsApp account yet.\n\nSend <code>/pair 08123456789</code> (your WhatsApp number) to get an 8-character pairing code, or <code>/qr 08123456789</code> to log in with a QR code.",
        AccessDenied => "⛔ <b>Access denied</b>\n\nYou have no registered WhatsApp account. Link one first with <code>/pair 08123456789</code>.",
        PrivateOnly => "Please use me in a private chat.",
        Help => "<b>Help</b>\n\n/start — welcome and menu\n/menu — main menu\n/pair &lt;number&gt; — link a WhatsApp number with a pairing code\n/qr &lt;number&gt; — link with a QR code\n/status — status of the active account\n/accounts — your accounts, switch between them\n/groups — groups of the active account\n/lang — change language\n/cancel — cancel the input in progress\n/help — this help\n\nNumber examples: <code>0812-3456-7890</code>, <code>+62 812 3456 7890</code>.",
        MenuTitle => "📱 <b>Main menu</b>\n\nActive account: <b>{phone}</b>\nStatus: {state}",
        MenuNoActive => "📱 <b>Main menu</b>\n\nNo active account. Pick one under «Accounts».",
        BtnAccounts => "👤 Accounts",
        BtnGroups => "👥 Groups",
        BtnMessages => "✉️ Messages",
        BtnSettings => "⚙️ Account settings",
        BtnLanguage => "🌐 Language",
        BtnHelp => "❓ Help",
        BtnBack => "⬅️ Back",
        BtnMenu => "🏠 Menu",
        BtnCancel => "✖️ Cancel",
        BtnNewCode => "🔄 New code",
        BtnRetry => "🔁 Try again",
        BtnPairAgain => "🔗 Link again",
        BtnYes => "✅ Yes",
        BtnNo => "✖️ No",
        BtnSwitch => "Use",
        BtnLogout => "🚪 Log out",
        BtnRemove => "🗑 Remove",
        BtnStatus => "ℹ️ Status",
        PairUsage => "Send your WhatsApp number now, for example <code>0812-3456-7890</code> or <code>+62 812 3456 7890</code>.\n\nOr in one go: <code>/pair 0812-3456-7890</code>",
        PairInvalid => "❌ <code>{input}</code> is not a valid number: {reason}.\n\nA correct example: <code>/pair 0812-3456-7890</code>",
        PairUserFull => "❌ You have reached the limit of {max} accounts. Remove one under «Accounts» first.",
        PairServerFull => "❌ This server has reached its limit of {max} accounts. Contact the admin.",
        PairOwnedByOther => "❌ This number cannot be linked here. If it is your number, contact the admin.",
        PairAlreadyLinked => "ℹ️ This number is already linked to your account. Open /accounts to use it.",
        PairInProgress => "⏳ Another pairing of yours is running. Finish or cancel it first.",
        PairRateLimited => "⏳ WhatsApp is limiting code requests for now. Try again in {wait}.",
        PairCooldown => "⏳ Pairing codes were requested too often. Wait {wait} before asking for another code.",
        PairWrongNumber => "❌ The phone that linked is not <b>{phone}</b>. That link was removed and nothing was registered. Link from WhatsApp on the phone with the number {phone} itself.",
        PairLocked => "❌ This account is being run by another process on the server.",
        PairFailedGeneric => "❌ Could not get a pairing code: {reason}. Try again in a moment.",
        PairCode => "🔑 Pairing code for <b>{phone}</b>:\n\n<code>{code}</code>\n\n1. Open WhatsApp on your phone\n2. Tap ⋮ / Settings → <b>Linked devices</b>\n3. Tap <b>Link a device</b> → <b>Link with phone number instead</b>\n4. Enter the code above (tap it to copy)",
        PairCountdown => "⏱ Valid for {left} more.",
        PairSuccess => "✅ Connected as <b>{phone}</b>. It is now your active account.",
        PairExpired => "⌛ The pairing code for <b>{phone}</b> expired before it was entered. Nothing was registered. Ask for a new code with the button below.",
        PairFailed => "❌ Pairing <b>{phone}</b> failed: {reason}. Nothing was registered.",
        PairCancelled => "✖️ Pairing <b>{phone}</b> cancelled. Nothing was registered.",
        QrUsage => "Send the WhatsApp number that will scan the QR now, for example <code>0812-3456-7890</code>.\n\nOr in one go: <code>/qr 0812-3456-7890</code>",
        QrCaption => "📷 Scan this QR in WhatsApp → Linked devices → Link a device, for <b>{phone}</b>. It refreshes by itself.",
        AccountsTitle => "👤 <b>Your accounts</b> ({count}/{max})",
        AccountLine => "{mark} <b>{phone}</b> — {state}",
        AccountDetail => "<b>{phone}</b>\nStatus: {state}\nLast updated: {updated}{error}",
        Switched => "✅ Your active account is now <b>{phone}</b>.",
        LogoutConfirm => "🚪 Log out <b>{phone}</b>? The device is unlinked from WhatsApp and the session goes to trash. Bot data stays until the account is removed.",
        LoggedOutDone => "🚪 <b>{phone}</b> is logged out. Link it again with /pair any time.",
        RemoveConfirm => "🗑 Remove <b>{phone}</b> from the bot? This device is also unlinked from WhatsApp on the phone (as Log out does), the session stops and all its files move to the trash folder.",
        RemovedDone => "🗑 <b>{phone}</b> removed. Its files are kept in the server's trash folder.",
        LanguageTitle => "🌐 Choose a language:",
        LanguageSet => "✅ Language set to English.",
        StaleButton => "This button is no longer valid. Open /menu again.",
        NotYourAccount => "⛔ That account is not yours.",
        NotConnected => "⚠️ Account <b>{phone}</b> is not connected to WhatsApp right now ({state}). Try again later.",
        Sorry => "😔 Sorry, something went wrong. It has been logged; please try again shortly.",
        UnknownCommand => "Unknown command. See /help.",
        NoticeLoggedOut => "⚠️ Account <b>{phone}</b> was logged out from the phone ({reason}). Its session files are kept. Link it again if needed.",
        NoticeBanned => "🚫 Account <b>{phone}</b> is temporarily banned by WhatsApp (reason {reason}) until {until}.",
        NoticeReconnected => "🟢 Account <b>{phone}</b> is connected again after being down for {after}.",
        NoticeResumed => "🟢 Account <b>{phone}</b> is connected in this bot again.",
        NoticeStreamReplaced => "⚠️ Account <b>{phone}</b> was opened by another client, so the bot's session stopped.",
        NoticeConnectFailures => "⚠️ Account <b>{phone}</b> failed to connect {count} times in a row: {reason}. The bot keeps trying.",
        NoticeConnectRefused => "⛔ WhatsApp refused the connection of account <b>{phone}</b>: {reason}. The bot stopped trying. The account stays registered; the bot tries again when it restarts. If this keeps happening, contact the admin.",
        AdminRestoreSummary => "🛠 <b>Startup finished</b>\nAccounts restored: {connected}/{total}\nFailed: {failed}\nLogged out: {logged_out}\nBanned: {banned}\nUnpaired: {unpaired}\nInterrupted pairings cleaned: {stale}",
        Cancelled => "✖️ Cancelled.",
        NothingToCancel => "Nothing is waiting for your input.",
        PromptExpired => "⌛ The request to {action} expired. Your text was not used and nothing was done; start again from the menu.",
        PromptCancelHint => "/cancel or the Cancel button to stop.",
        StateConnected => "🟢 connected",
        StateConnecting => "🟡 connecting…",
        StateDisconnected => "🟠 disconnected, retrying",
        StateLoggedOut => "🔴 logged out",
        StateBanned => "🚫 temporarily banned",
        StateUnpaired => "⚪ not paired",
        StatePairing => "🔑 waiting for pairing",
        StateStopped => "⚫ stopped",
        ComingSoon => "This feature is not available yet.",
        PairTakenOver => "❌ Pairing <b>{phone}</b> was cancelled: another Telegram user asked for a code for this number. If it is your number, ask for a new code and enter it on that phone.",
        NoticeAccountBanned => "⛔ WhatsApp <b>banned</b> the number <b>{phone}</b> ({reason}). The bot stopped using it and cancelled its jobs; pairing it again will not help. If you think this is a mistake, open WhatsApp on the phone and choose <b>Support</b> / <b>Request a review</b> to appeal.",
        NoticeAccountLocked => "⛔ WhatsApp <b>locked</b> the number <b>{phone}</b> ({reason}). The bot stopped using it and cancelled its jobs. Open WhatsApp on the phone: follow the steps shown to unlock it, or choose <b>Support</b> / <b>Request a review</b> to appeal.",
        StateBannedForGood => "⛔ banned by WhatsApp",
        StateReplaced => "⚫ opened on another device",
        NoticeReachOutLimited => "✋ WhatsApp limits messages from <b>{phone}</b> to new contacts (463). Job #{job} no longer sends to numbers that never wrote to this account; the others still get it.",
        NoticeReachOutLimitedUntil => "✋ WhatsApp limits messages from <b>{phone}</b> to new contacts (463) until {until}. Job #{job} no longer sends to numbers that never wrote to this account; the others still get it.",
        BtnReconnect => "🔌 Reconnect here",
        Reconnecting => "🔌 Connecting <b>{phone}</b> in this bot again. The session on the other device will end.",
        BtnInbox => "📥 Incoming messages",
        Suspended => "⛔ <b>Access denied</b>\n\nYour access to this bot is <b>suspended</b> by the operator: commands and buttons are refused until it is restored. Your WhatsApp account stays registered. Contact the bot's operator if this is a mistake.",
        NoticeSuspended => "⛔ The bot's operator <b>suspended</b> your access to this bot. Commands and buttons are refused until it is restored; your WhatsApp account stays registered.",
        NotOnWhatsApp => "❌ The number <b>{phone}</b> is not on WhatsApp; the message was not sent.",
        NotInGroup => "🚪 The account <b>{phone}</b> is no longer a member of this group: it left or was removed.",
        BtnGroupList => "📋 Group list",
        NoticeOperatorDisconnected => "ℹ️ The operator disconnected the WhatsApp session of your account <b>{phone}</b>. It stays registered; connect it again any time with the button below.",
        BtnReconnectAfterStop => "🔌 Connect again",
        ReconnectingAfterStop => "🔌 Connecting <b>{phone}</b> again…",
        NoticeOperatorPausedJobs => "⏸ The operator paused the bulk jobs of your account <b>{phone}</b>. Resume one with «▶️ Resume» on its progress message if you need to.",
        JobNowState => "This job is now {state}.",
        GroupNotAdminNote => "ℹ️ This account is not an admin of this group: the invite link, the members and the group's settings are for admins only.",
        GroupAdminOnly => "⛔ Only the group's admins can do this, and this account is not one of them.",
        NoticeRestored => "✅ The operator <b>restored</b> your access to this bot. Send /menu to carry on.",
        // --- ways ---
        BtnLinkNumber => "🔗 Link a number",
        BtnOtherAccount => "🔄 Use another account",
        PromptClosed => "ℹ️ The question waiting for your answer was closed; your next text is not used for it.",
        NotConnectedOffline => "⚠️ Account <b>{phone}</b> is not connected to WhatsApp ({state}). Link it again, or use another account.",
        BtnReport => "📄 Report",
        BtnJobs => "📋 Jobs",
        StatusRefreshed => "ℹ️ Status refreshed",
        // --- peer ---
        NoticeProxyFailed => "🧱 Account <b>{phone}</b> cannot connect because of its <b>proxy</b> ({proxy}): {reason}. This is a proxy problem, not a WhatsApp outage. The bot keeps trying; the operator has been told.",
        AdminProxyFailed => "🧱 The proxy of account <b>{phone}</b> (owner <code>{owner}</code>) failed: {proxy}: {reason}. Check that proxy or change it with <code>tgwa proxy</code>.",
        // --- proxy2 ---
        PairProxyFailed => "🧱 Pairing <b>{phone}</b> failed because of the account's <b>proxy</b>: {reason}. This is a proxy problem, not a WhatsApp outage; nothing was registered. Ask the operator to check that proxy (or change it with <code>/admin proxy</code> or <code>tgwa proxy</code>), then try again.",
    }
}

/// Escapes text for Telegram's HTML parse mode.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `2m 05s`, `1h 00m`, `45s`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

// --- members ---

/// How an account is shown in a message (HTML): its nickname next to its number
/// ([`crate::account::Account::label`]), escaped. Every screen naming an account uses this.
pub fn account_label(a: &crate::account::Account) -> String {
    esc(&a.label())
}

// --- ways ---

/// A duration in the user's units: `2 mnt 05 dtk`, `1 jam 00 mnt`, `45 dtk` in Indonesian,
/// [`duration`]'s `2m 05s` in English.
pub fn duration_in(lang: Lang, d: std::time::Duration) -> String {
    if lang == Lang::En {
        return duration(d);
    }
    let s = d.as_secs();
    if s >= 3600 {
        format!("{} jam {:02} mnt", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} mnt {:02} dtk", s / 60, s % 60)
    } else {
        format!("{s} dtk")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_users_units() {
        let d = std::time::Duration::from_secs(125);
        assert_eq!(duration_in(Lang::Id, d), "2 mnt 05 dtk");
        assert_eq!(duration_in(Lang::En, d), "2m 05s");
        assert_eq!(
            duration_in(Lang::Id, std::time::Duration::from_secs(3600)),
            "1 jam 00 mnt"
        );
    }

    #[test]
    fn placeholders_match_between_languages() {
        let keys = [
            Key::MenuTitle,
            Key::PairInvalid,
            Key::PairCode,
            Key::PairRateLimited,
            Key::PairCooldown,
            Key::PairWrongNumber,
            Key::AccountDetail,
            Key::NoticeBanned,
            Key::AdminRestoreSummary,
            Key::NoticeAccountBanned,
            Key::NoticeAccountLocked,
            Key::NoticeReachOutLimited,
            Key::NoticeReachOutLimitedUntil,
        ];
        for k in keys {
            let holes = |s: &str| {
                let mut v: Vec<String> = s
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|x| x.0.to_string()))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(holes(tr(Lang::Id, k)), holes(tr(Lang::En, k)), "{k:?}");
        }
    }

    #[test]
    fn access_denied_says_so_in_both() {
        assert!(tr(Lang::Id, Key::AccessDenied).contains("AKSES DITOLAK"));
        assert!(tr(Lang::En, Key::AccessDenied).contains("Access denied"));
    }

    #[test]
    fn escaping_and_durations() {
        assert_eq!(esc("<b>&"), "&lt;b&gt;&amp;");
        assert_eq!(duration(std::time::Duration::from_secs(125)), "2m 05s");
        assert_eq!(duration(std::time::Duration::from_secs(3600)), "1h 00m");
    }
}
