//! Routing: which channels a notification goes to (being written).
