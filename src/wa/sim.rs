//! The in-process WhatsApp simulator (`TGWA_WA_BACKEND=sim`).
