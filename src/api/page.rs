//! `GET /`: the status page, one self-contained HTML document rendered from the view.
//!
//! Order: a header (host, version, a healthy/stale badge with the last tick's age, uptime,
//! config source, warnings when the state cannot be saved or writes failed), the firing then
//! pending alerts (or an "all clear" line), one table per metric group (the metric name's
//! prefix: cpu, load, mem, swap, disk, net, tcp) with each live series' latest value, an
//! inline SVG chart of its recent values and, when the history file can be read, one of its
//! last 24 hours (`api::daily`; otherwise a one-line note says why not), channel health, and
//! the silences in force.
//!
//! Contract: every text that comes from data (host, config source, rule names, labels such as
//! mount points, silences' comments, channel errors) goes through [`html::Esc`]; charts are
//! built from numbers. The page needs nothing from elsewhere and no script: it reloads itself
//! with `<meta http-equiv="refresh">` (every two intervals, 5 s to 60 s), which CSP does not
//! govern, so [`CSP`] allows one thing only: the page's own `<style>` element, by its SHA-256
//! hash (a test checks the hash against [`CSS`]; change both together). No `style=`
//! attribute is ever written. Rendering writes into one `String` sized up front.
//!
//! Not for: anything but rendering.

mod groups;
mod html;
mod svg;
#[cfg(test)]
mod tests;

use super::daily::Charts;
use super::view::{AlertRow, View};
use html::{Dur, Esc, When, value_into};
use std::fmt::Write;
use std::time::Instant;

/// The page's Content-Security-Policy: nothing from elsewhere, no script, no plugin, no
/// form; the one inline `<style>` element allowed by its hash.
pub(crate) const CSP: &str = "default-src 'none'; \
     style-src 'sha256-cchSx+lxM8azhrJxPd6OI1oiEipVGGZW88vfC8t8MHw='; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's style sheet (its hash is in [`CSP`]).
const CSS: &str = include_str!("page/style.css");

/// Renders the page as of `now` (monotonic) and `now_unix` (wall clock, Unix seconds),
/// without the 24-hour charts.
#[cfg(test)]
pub(crate) fn render_at(view: &View, now: Instant, now_unix: f64) -> String {
    render_with(view, None, now, now_unix)
}

/// Renders the page with the 24-hour charts (`None`: none, and no note about them).
pub(crate) fn render_with(
    view: &View,
    charts: Option<&Charts>,
    now: Instant,
    now_unix: f64,
) -> String {
    let day_points = match charts {
        Some(Charts::Ready(day)) => day.buckets,
        _ => 0,
    };
    let mut out = String::with_capacity(estimate(view, day_points));
    let firing = view.alerts.iter().filter(|a| a.firing()).count();
    let pending = view.alerts.len() - firing;
    let refresh = (view.interval.as_secs_f64() * 2.0).clamp(5.0, 60.0).round();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{} · ",
        Esc(&view.host)
    );
    if firing > 0 {
        let _ = write!(out, "{firing} firing");
    } else {
        out.push_str("OK");
    }
    let _ = write!(out, " · hostwatch</title><style>{CSS}</style></head><body><main>");
    header(&mut out, view, now, now_unix, firing, pending);
    alerts(&mut out, view, now_unix);
    groups::groups(&mut out, view, charts);
    channels(&mut out, view, now_unix);
    silences(&mut out, view, now_unix);
    let _ = writeln!(
        out,
        "<footer>hostwatch {} · this page reloads every {refresh} s · \
         JSON at <a href=\"/status\">/status</a>, Prometheus at <a href=\"/metrics\">/metrics</a>\
         </footer></main></body></html>",
        Esc(view.version)
    );
    out
}

/// A generous size of the page of `view`, so rendering grows its buffer once at most.
fn estimate(view: &View, day_points: usize) -> usize {
    6 * 1024
        + CSS.len()
        + view.series.len() * (1000 + 12 * view.recent_ts.len() + 12 * day_points)
        + view.alerts.len() * 900
        + view.channels.len() * 600
        + view.silences.len() * 500
}

/// The header: who, how healthy, since when, and what is wrong with hostwatch itself.
fn header(out: &mut String, view: &View, now: Instant, now_unix: f64, firing: usize, pend: usize) {
    let age = view.last_tick_age(now).as_secs_f64();
    let _ = write!(out, "<header><div class=\"top\"><h1>{}</h1>", Esc(&view.host));
    if !view.healthy(now) {
        let _ = write!(
            out,
            "<span class=\"badge critical\" title=\"no tick for more than three intervals\">\
             stale · last tick {} ago</span>",
            Dur(age)
        );
    } else if view.ticks == 0 {
        out.push_str("<span class=\"badge pending\">starting · no tick yet</span>");
    } else {
        let _ = write!(out, "<span class=\"badge ok\">healthy · last tick {} ago</span>", Dur(age));
    }
    let worst = view.alerts.iter().filter(|a| a.firing()).map(|a| a.severity).max();
    match worst {
        Some(s) => {
            let _ = write!(out, "<span class=\"badge {0}\">{firing} firing</span>", s.as_str());
        }
        None => out.push_str("<span class=\"badge ok\">no alert firing</span>"),
    }
    if pend > 0 {
        let _ = write!(out, "<span class=\"badge pending\">{pend} pending</span>");
    }
    let _ = write!(
        out,
        "</div><div class=\"meta\"><span>hostwatch {}</span><span>up {}</span>\
         <span>every {} · {} ticks · last took {:.1} ms</span><span>config {}</span></div>",
        Esc(view.version),
        Dur(now.saturating_duration_since(view.started).as_secs_f64()),
        Dur(view.interval.as_secs_f64()),
        view.ticks,
        view.tick_duration.as_secs_f64() * 1000.0,
        Esc(&view.config_source),
    );
    if view.last_tick_unix > 0.0 {
        let _ = write!(
            out,
            "<div class=\"meta\"><span>last sample {}</span></div>",
            When { at: Some(view.last_tick_unix), now: now_unix }
        );
    }
    if view.persist_failing {
        out.push_str(
            "<p class=\"warn\">The state file cannot be saved: alert states and the outbox live \
             in memory only until it can (see the log).</p>",
        );
    }
    if view.write_failures > 0 {
        let _ = write!(
            out,
            "<p class=\"warn\">{} write(s) to the outbox journal or the events log failed since \
             start (see the log).</p>",
            view.write_failures
        );
    }
    out.push_str("</header>");
}

/// Firing alerts, then pending ones (the view keeps them in that order), or "all clear".
fn alerts(out: &mut String, view: &View, now_unix: f64) {
    out.push_str("<section id=\"alerts\"><h2>Alerts</h2>");
    if view.alerts.is_empty() {
        out.push_str("<p class=\"clear\">All clear: no alert is firing or pending.</p></section>");
        return;
    }
    out.push_str("<ul class=\"alerts\">");
    for a in &view.alerts {
        alert(out, a, now_unix);
    }
    out.push_str("</ul></section>");
}

/// One alert as a card.
fn alert(out: &mut String, a: &AlertRow, now_unix: f64) {
    let nodata = matches!(a.phase, crate::alerts::Phase::Firing { nodata: Some(_), .. });
    let (class, phase) = match (a.firing(), nodata) {
        (true, true) => (a.severity.as_str(), "no data"),
        _ if a.flapping.is_some() => (a.severity.as_str(), "flapping"),
        (true, false) => (a.severity.as_str(), "firing"),
        _ => ("pending", "pending"),
    };
    let _ = write!(
        out,
        "<li class=\"alert {class}\"><div class=\"head\"><span class=\"badge {class}\">{phase} · \
         {}</span> <b>{}</b></div><div class=\"lbl\">{}</div><div>value <b>",
        a.severity.as_str(),
        Esc(&a.rule),
        Esc(&a.series),
    );
    value_into(out, a.metric.unit(), a.value);
    let _ = write!(
        out,
        "</b>, threshold <code>{}</code></div><div class=\"meta\"><span>{} {}</span>",
        Esc(&a.threshold),
        match (a.firing(), a.flapping.is_some()) {
            (_, true) => "flapping since",
            (true, false) => "firing since",
            (false, false) => "pending since",
        },
        When { at: Some(a.since()), now: now_unix },
    );
    if a.firing() {
        let _ = write!(
            out,
            "<span>last notified {}</span>",
            When { at: a.last_notified(), now: now_unix }
        );
    }
    if let Some(by) = &a.silenced_by {
        let _ = write!(out, "<span class=\"silenced\">silenced by {}</span>", Esc(by));
    }
    out.push_str("</div></li>");
}

/// Delivery health per channel, one card each.
fn channels(out: &mut String, view: &View, now_unix: f64) {
    out.push_str("<section id=\"channels\"><h2>Channels</h2>");
    if view.channels.is_empty() {
        out.push_str(
            "<p class=\"mute\">No delivery: no channel is configured, or this is a dry run.</p>\
             </section>",
        );
        return;
    }
    out.push_str("<ul class=\"cards\">");
    for (name, h) in &view.channels {
        let failing = h.consecutive_failures > 0;
        let _ = write!(
            out,
            "<li class=\"card {}\"><div class=\"head\"><b>{}</b> ",
            if failing { "bad" } else { "good" },
            Esc(name)
        );
        if failing {
            let _ = write!(
                out,
                "<span class=\"badge critical\">failing · {} in a row</span>",
                h.consecutive_failures
            );
        } else {
            out.push_str("<span class=\"badge ok\">ok</span>");
        }
        let _ = write!(
            out,
            "</div><div class=\"meta\"><span>outbox <b>{}</b></span><span>delivered {}</span>\
             <span>failed {}</span><span>retried {}</span><span>last success {}</span></div>",
            h.pending,
            h.delivered,
            h.failed,
            h.retried,
            When { at: h.last_success, now: now_unix },
        );
        if h.held_back > 0 {
            let _ = write!(
                out,
                "<div class=\"meta\"><span>held back by its rate limit <b>{}</b></span></div>",
                h.held_back
            );
        }
        if let Some(e) = &h.last_error {
            let _ = write!(out, "<div class=\"err\">last error: {}</div>", Esc(e));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></section>");
}

/// The silences in force, one card each.
fn silences(out: &mut String, view: &View, now_unix: f64) {
    out.push_str("<section id=\"silences\"><h2>Silences</h2>");
    if view.silences.is_empty() {
        out.push_str("<p class=\"mute\">No silence in force.</p></section>");
        return;
    }
    out.push_str("<ul class=\"cards\">");
    for s in &view.silences {
        out.push_str("<li class=\"card\"><div class=\"head\">rule <code>");
        match &s.rule {
            Some(r) => html::escape_into(out, r),
            None => out.push('*'),
        }
        out.push_str("</code>");
        for (k, v) in &s.matchers {
            let _ = write!(out, " · <code>{}={}</code>", Esc(k), Esc(v));
        }
        out.push_str("</div><div class=\"meta\">");
        if let Some(schedule) = &s.schedule {
            let _ =
                write!(out, "<span>recurring <code>{}</code></span>", Esc(&schedule.to_string()));
            match (s.next_window(now_unix), schedule.zone()) {
                (Some((start, end)), Some(zone)) if start <= now_unix => {
                    let _ = write!(
                        out,
                        "<span>in force now, until {}</span>",
                        Esc(&crate::timefmt::human_in(zone, end))
                    );
                }
                (Some((start, _)), Some(zone)) => {
                    let _ = write!(
                        out,
                        "<span>next {} ({})</span>",
                        Esc(&crate::timefmt::human_in(zone, start)),
                        When { at: Some(start), now: now_unix },
                    );
                }
                (_, None) => {
                    let e = schedule.zone_error().unwrap_or_default();
                    let _ = write!(out, "<span class=\"err\">never active: {}</span>", Esc(e));
                }
                (None, Some(_)) => out.push_str("<span>no window before it ends</span>"),
            }
        }
        if s.until.is_finite() {
            let _ = write!(
                out,
                "<span>until {} ({})</span>",
                Esc(&crate::timefmt::human(s.until)),
                When { at: Some(s.until), now: now_unix },
            );
        }
        // Config silences carry ids too (`config-1` or their own), so the id is all it says.
        if !s.id.is_empty() {
            let _ = write!(out, "<span>id <code>{}</code></span>", Esc(&s.id));
        }
        out.push_str("</div>");
        if !s.comment.is_empty() {
            let _ = write!(out, "<div>{}</div>", Esc(&s.comment));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></section>");
}
