//! The Audit log page's chart: calls per UTC day by outcome, as an inline SVG of stacked bars.
//!
//! Contract:
//! - [`calls_per_day`] takes an inclusive range of UTC days and the store's counts per day and
//!   outcome ([`crate::store::audit::DayCount`], already parsed) and lays out one bar per day
//!   of the range (days without calls included, counts outside the range ignored). A bar's
//!   height is proportional to its day's calls, the busiest day reaching the top; within a bar,
//!   one segment per outcome class ([`Class`]) in a fixed order from the bottom.
//! - The SVG is built from numbers and from labels passed through [`escape`] only (dates,
//!   outcome names), so the page may include it unescaped. Colours come from CSS classes
//!   (`c-ok`, `c-refused`, …): the pages' CSP allows no inline style.
//! - It is accessible: `role="img"` with a `<title>` and a `<desc>` (the text summary), a
//!   `<title>` per bar (a tooltip), and the summary and legend also as text for the page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::audit::Outcome;

/// The SVG's coordinate box and the plot area within it.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;
const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;
/// The share of a day's slot its bar fills.
const BAR_SHARE: f64 = 0.7;
/// At most this many day labels under the bars (more would overlap).
const MAX_LABELS: usize = 16;

/// The colour classes of outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Ok,
    /// Denied by policy, or invalid arguments: refused before the upstream.
    Refused,
    RateLimited,
    /// The upstream's or the gateway's errors.
    Failed,
    Unauthenticated,
    /// An outcome this version does not know (an older or newer gateway's).
    Other,
}

impl Class {
    /// Bottom to top in a bar, and the legend's order.
    pub const ALL: [Class; 6] = [
        Class::Ok,
        Class::Refused,
        Class::RateLimited,
        Class::Failed,
        Class::Unauthenticated,
        Class::Other,
    ];

    /// The class of a stored outcome.
    pub fn of(outcome: &str) -> Class {
        match Outcome::parse(outcome) {
            Some(Outcome::Ok) => Class::Ok,
            Some(Outcome::Denied | Outcome::Invalid) => Class::Refused,
            Some(Outcome::RateLimited) => Class::RateLimited,
            Some(Outcome::UpstreamError | Outcome::Error) => Class::Failed,
            Some(Outcome::Unauthenticated) => Class::Unauthenticated,
            None => Class::Other,
        }
    }

    /// The CSS class that colours it (in the SVG and the legend).
    pub fn css(self) -> &'static str {
        match self {
            Class::Ok => "c-ok",
            Class::Refused => "c-refused",
            Class::RateLimited => "c-limited",
            Class::Failed => "c-failed",
            Class::Unauthenticated => "c-unauth",
            Class::Other => "c-other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Refused => "denied or invalid",
            Class::RateLimited => "rate limited",
            Class::Failed => "failed",
            Class::Unauthenticated => "unauthenticated",
            Class::Other => "other",
        }
    }
}

/// One day's bar, in SVG coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub day: NaiveDate,
    pub calls: i64,
    pub x: f64,
    pub width: f64,
    /// Bottom to top, classes with calls only.
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub class: Class,
    pub calls: i64,
    pub y: f64,
    pub height: f64,
}

/// An entry of the legend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub css: &'static str,
    pub label: &'static str,
    pub calls: i64,
}

/// The chart of a range, ready for the page.
#[derive(Debug, Clone)]
pub struct Chart {
    pub bars: Vec<Bar>,
    /// The busiest day's calls (the top of the scale).
    pub max: i64,
    pub total: i64,
    /// "412 calls in 14 days: 398 ok, 9 denied, …".
    pub summary: String,
    pub legend: Vec<Key>,
    /// The SVG, safe to include as it is (see the module's contract).
    pub svg: String,
}

/// Calls per day from `from` to `to` (inclusive) by outcome, from `(day, outcome, calls)`.
pub fn calls_per_day(from: NaiveDate, to: NaiveDate, counts: &[(NaiveDate, &str, i64)]) -> Chart {
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    // Per day and class; per outcome (for the summary), in the order of `Outcome::ALL`.
    let mut per_day: BTreeMap<NaiveDate, BTreeMap<Class, i64>> = BTreeMap::new();
    let mut per_outcome: Vec<(String, i64)> = Outcome::ALL
        .iter()
        .map(|o| (o.as_str().to_string(), 0))
        .collect();
    for (day, outcome, calls) in counts {
        if *day < from || *day > to || *calls <= 0 {
            continue;
        }
        *per_day
            .entry(*day)
            .or_default()
            .entry(Class::of(outcome))
            .or_default() += calls;
        match per_outcome.iter_mut().find(|(o, _)| o == outcome) {
            Some((_, n)) => *n += calls,
            None => per_outcome.push((outcome.to_string(), *calls)),
        }
    }
    let total: i64 = per_outcome.iter().map(|(_, n)| n).sum();
    let max = per_day
        .values()
        .map(|c| c.values().sum::<i64>())
        .max()
        .unwrap_or(0);

    let slot = (WIDTH - LEFT - RIGHT) / days.len().max(1) as f64;
    let width = (slot * BAR_SHARE).max(1.0);
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let classes = per_day.get(day);
            let mut bottom = TOP + PLOT_HEIGHT;
            let segments = Class::ALL
                .iter()
                .filter_map(|class| {
                    let calls = *classes?.get(class)?;
                    let height = PLOT_HEIGHT * calls as f64 / max as f64;
                    bottom -= height;
                    Some(Segment {
                        class: *class,
                        calls,
                        y: bottom,
                        height,
                    })
                })
                .collect();
            Bar {
                day: *day,
                calls: classes.map_or(0, |c| c.values().sum()),
                x: LEFT + slot * i as f64 + (slot - width) / 2.0,
                width,
                segments,
            }
        })
        .collect::<Vec<_>>();

    let summary = summary(total, days.len(), &per_outcome);
    let legend = Class::ALL
        .iter()
        .map(|class| Key {
            css: class.css(),
            label: class.label(),
            calls: per_day.values().filter_map(|c| c.get(class)).sum(),
        })
        // "other" only when there is some.
        .filter(|k| k.css != Class::Other.css() || k.calls > 0)
        .collect();
    let svg = svg(&bars, max, from, to, &summary);
    Chart {
        bars,
        max,
        total,
        summary,
        legend,
        svg,
    }
}

/// "412 calls in 14 days: 398 ok, 9 denied, 5 rate limited".
fn summary(total: i64, days: usize, per_outcome: &[(String, i64)]) -> String {
    let calls = plural(total, "call", "calls");
    let days = plural(days as i64, "day", "days");
    if total == 0 {
        return format!("No calls in {days}.");
    }
    let parts: Vec<String> = per_outcome
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(o, n)| format!("{n} {}", o.replace('_', " ")))
        .collect();
    format!("{calls} in {days}: {}", parts.join(", "))
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Text for SVG (XML) content or an attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The chart as SVG: numbers, class names and escaped labels only.
fn svg(bars: &[Bar], max: i64, from: NaiveDate, to: NaiveDate, summary: &str) -> String {
    let mut s = String::new();
    let base = TOP + PLOT_HEIGHT;
    // `write!` to a String cannot fail.
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc">"#
    );
    let _ = write!(
        s,
        r#"<title id="chart-title">{}</title><desc id="chart-desc">{}</desc>"#,
        escape(&format!("Calls per day by outcome, {from} to {to}")),
        escape(summary),
    );
    // The scale: the busiest day at the top, zero at the base.
    let _ = write!(
        s,
        r#"<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{x2}" y2="{TOP}"/><line class="axis" x1="{LEFT}" y1="{base}" x2="{x2}" y2="{base}"/><text class="tick" x="{tx}" y="{ty}" text-anchor="end">{max}</text><text class="tick" x="{tx}" y="{base}" text-anchor="end">0</text>"#,
        x2 = WIDTH - RIGHT,
        tx = LEFT - 6.0,
        ty = TOP + 8.0,
    );
    let every = bars.len().div_ceil(MAX_LABELS).max(1);
    for (i, bar) in bars.iter().enumerate() {
        let _ = write!(
            s,
            r#"<g class="day"><title>{}</title>"#,
            escape(&bar_title(bar))
        );
        for seg in &bar.segments {
            let _ = write!(
                s,
                r#"<rect class="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
                seg.class.css(),
                bar.x,
                seg.y,
                bar.width,
                seg.height,
            );
        }
        // Newest day labelled always; then every `every` days back from it.
        if (bars.len() - 1 - i).is_multiple_of(every) {
            let _ = write!(
                s,
                r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bar.x + bar.width / 2.0,
                HEIGHT - 8.0,
                escape(&bar.day.format("%b %-d").to_string()),
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

/// "Dec 2: 12 calls (10 ok, 2 denied or invalid)".
fn bar_title(bar: &Bar) -> String {
    let day = bar.day.format("%a %b %-d");
    let calls = plural(bar.calls, "call", "calls");
    if bar.segments.is_empty() {
        return format!("{day}: no calls");
    }
    let parts: Vec<String> = bar
        .segments
        .iter()
        .map(|s| format!("{} {}", s.calls, s.class.label()))
        .collect();
    format!("{day}: {calls} ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn bars_are_as_high_as_their_days_calls() {
        let counts = [
            (day(1), "ok", 10),
            (day(2), "ok", 4),
            (day(2), "denied", 1),
            (day(3), "rate_limited", 2),
            (day(3), "upstream_error", 1),
            (day(3), "invalid", 2),
        ];
        let chart = calls_per_day(day(1), day(4), &counts);
        assert_eq!(chart.max, 10);
        assert_eq!(chart.total, 20);
        let heights: Vec<f64> = chart
            .bars
            .iter()
            .map(|b| b.segments.iter().map(|s| s.height).sum())
            .collect();
        assert_eq!(heights.len(), 4, "one bar per day, the empty one too");
        assert!(
            close(heights[0], PLOT_HEIGHT),
            "the busiest day reaches the top"
        );
        assert!(close(heights[1], PLOT_HEIGHT / 2.0));
        assert!(close(heights[2], PLOT_HEIGHT / 2.0));
        assert!(close(heights[3], 0.0));
        // Stacked from the base in class order: ok, then denied above it.
        let two = &chart.bars[1].segments;
        assert_eq!(two[0].class, Class::Ok);
        assert!(close(two[0].y + two[0].height, TOP + PLOT_HEIGHT));
        assert!(close(two[0].height, 4.0 * two[1].height));
        assert_eq!(two[1].class, Class::Refused);
        assert!(close(two[1].y + two[1].height, two[0].y));
        // Denied and invalid share a colour; each class once per bar.
        let three: Vec<(Class, i64)> = chart.bars[2]
            .segments
            .iter()
            .map(|s| (s.class, s.calls))
            .collect();
        assert_eq!(
            three,
            [
                (Class::Refused, 2),
                (Class::RateLimited, 2),
                (Class::Failed, 1)
            ]
        );
        assert_eq!(
            chart.summary,
            "20 calls in 4 days: 14 ok, 1 denied, 2 invalid, 2 rate limited, 1 upstream error"
        );
        let svg = &chart.svg;
        assert_eq!(svg.matches("<rect ").count(), 6);
        assert!(svg.contains(r#"<rect class="c-refused""#), "{svg}");
        assert!(svg.contains(">Dec 4</text>"), "{svg}");
        assert!(
            svg.contains(
                "<title>Thu Dec 3: 5 calls (2 denied or invalid, 2 rate limited, 1 failed)</title>"
            ),
            "{svg}"
        );
    }

    #[test]
    fn an_empty_range_draws_no_bars_and_says_so() {
        let chart = calls_per_day(day(1), day(14), &[(day(20), "ok", 3)]);
        assert_eq!(chart.bars.len(), 14);
        assert!(
            chart
                .bars
                .iter()
                .all(|b| b.segments.is_empty() && b.calls == 0)
        );
        assert_eq!((chart.total, chart.max), (0, 0));
        assert_eq!(chart.summary, "No calls in 14 days.");
        assert!(!chart.svg.contains("<rect"));
        assert!(!chart.svg.contains("NaN") && !chart.svg.contains("inf"));
        assert!(
            chart
                .svg
                .contains("<desc id=\"chart-desc\">No calls in 14 days.</desc>")
        );
        assert!(
            chart
                .legend
                .iter()
                .all(|k| k.calls == 0 && k.css != "c-other")
        );
    }

    #[test]
    fn one_day_is_one_full_bar() {
        let chart = calls_per_day(day(2), day(2), &[(day(2), "ok", 1)]);
        assert_eq!(chart.bars.len(), 1);
        let bar = &chart.bars[0];
        assert!(close(bar.segments[0].height, PLOT_HEIGHT));
        assert!(bar.x >= LEFT && bar.x + bar.width <= WIDTH - RIGHT);
        assert_eq!(chart.summary, "1 call in 1 day: 1 ok");
    }

    #[test]
    fn unknown_outcomes_are_escaped_and_counted_as_other() {
        let chart = calls_per_day(day(1), day(1), &[(day(1), "<b>&\"x\"", 2)]);
        assert_eq!(chart.bars[0].segments[0].class, Class::Other);
        assert_eq!(chart.summary, "2 calls in 1 day: 2 <b>&\"x\"");
        assert!(
            chart.svg.contains("2 &lt;b&gt;&amp;&quot;x&quot;"),
            "{}",
            chart.svg
        );
        assert!(!chart.svg.contains("<b>"));
        assert!(
            chart
                .legend
                .iter()
                .any(|k| k.css == "c-other" && k.calls == 2)
        );
    }

    #[test]
    fn long_ranges_label_some_days_only() {
        let to = day(1) + chrono::Days::new(91);
        let chart = calls_per_day(day(1), to, &[]);
        assert_eq!(chart.bars.len(), 92);
        let labels = chart.svg.matches("class=\"label\"").count();
        assert!((2..=MAX_LABELS).contains(&labels), "{labels} labels");
    }
}
