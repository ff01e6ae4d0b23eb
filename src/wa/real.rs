//! The real WhatsApp adapter on whatsapp-rust 0.7.
