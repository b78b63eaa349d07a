//! Demo data for a new database: "Lotus Flow Yoga" (Pro) and "Free Spirit Pilates" (Free).
//!
//! Contract: runs once, on a database without studios, in one transaction. Everything is
//! deterministic apart from "now": ids, names, amounts and the weekly timetable are fixed; dates
//! are placed relative to today (occurrences over the past 4 weeks and the next 3, expenses over the
//! past 3 months, a monthly workshop reaching back further so monthly revenue differs). Passwords
//! of the demo users are stored as argon2id PHC strings, precomputed so that seeding costs nothing.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};
use serde_json::json;
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::input::fmt_time;

/// The demo studio on the Pro tier.
pub const DEMO_PRO_STUDIO: &str = "std_lotus";
/// The demo studio on the Free tier.
pub const DEMO_FREE_STUDIO: &str = "std_freespirit";

/// A studio user who can sign in (`POST /v1/auth/sign-in`) on the demo data.
#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    pub studio_id: &'static str,
    pub user_id: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub role: &'static str,
    password_hash: &'static str,
}

/// The six demo users (owner, admin, staff of each studio).
pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        studio_id: DEMO_PRO_STUDIO,
        user_id: "usr_lotus_owner",
        name: "Maya Chen",
        email: "owner@lotusflow.example",
        password: "lotus-owner-demo",
        role: "owner",
        password_hash: HASHES[0],
    },
    DemoUser {
        studio_id: DEMO_PRO_STUDIO,
        user_id: "usr_lotus_admin",
        name: "Jon Alvarez",
        email: "admin@lotusflow.example",
        password: "lotus-admin-demo",
        role: "admin",
        password_hash: HASHES[1],
    },
    DemoUser {
        studio_id: DEMO_PRO_STUDIO,
        user_id: "usr_lotus_staff",
        name: "Priya Nair",
        email: "staff@lotusflow.example",
        password: "lotus-staff-demo",
        role: "staff",
        password_hash: HASHES[2],
    },
    DemoUser {
        studio_id: DEMO_FREE_STUDIO,
        user_id: "usr_fs_owner",
        name: "Sam Okafor",
        email: "owner@freespirit.example",
        password: "spirit-owner-demo",
        role: "owner",
        password_hash: HASHES[3],
    },
    DemoUser {
        studio_id: DEMO_FREE_STUDIO,
        user_id: "usr_fs_admin",
        name: "Alex Kim",
        email: "admin@freespirit.example",
        password: "spirit-admin-demo",
        role: "admin",
        password_hash: HASHES[4],
    },
    DemoUser {
        studio_id: DEMO_FREE_STUDIO,
        user_id: "usr_fs_staff",
        name: "Kim Larsen",
        email: "staff@freespirit.example",
        password: "spirit-staff-demo",
        role: "staff",
        password_hash: HASHES[5],
    },
];

/// argon2id (m=19456, t=2, p=1) hashes of the demo passwords, in `DEMO_USERS` order.
const HASHES: [&str; 6] = [
    "$argon2id$v=19$m=19456,t=2,p=1$Zmxvd2dhdGUtZGVtby0w$E5gKd7qMb9Zp+/CvAMYjO4EbMl2F+9P7drP8oisiRMQ",
    "$argon2id$v=19$m=19456,t=2,p=1$Zmxvd2dhdGUtZGVtby0x$b5/atUZtZK6aGk7En9qfAJt34UAj4I6TBreCUtUp9Oo",
    "$argon2id$v=19$m=19456,t=2,p=1$Zmxvd2dhdGUtZGVtby0y$+txmTk4aFslulIEwbtJ9PuQkCZtNmP3tLYHEJ4yD5XU",
    "$argon2id$v=19$m=19456,t=2,p=1$Zmxvd2dhdGUtZGVtby0z$SKyE7cI2ecorF256YsoEaSexl1ek3/NPWkj7GwJ6MOI",
    "$argon2id$v=19$m=19456,t=2,p=1$Zmxvd2dhdGUtZGVtby00$3O/rjlqlmdZtIBqL7vxN0epvQw9Dv+xZzMBqweaPmuM",
    "$argon2id$v=19$m=19456,t=2,p=1$Zmxvd2dhdGUtZGVtby01$sRWdA/vhP9da+aS7ICwmge22RggbpOXIIo8XxPvhyP8",
];

/// The hash checked when a sign-in names an unknown e-mail (of a password nobody has).
pub const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Zmxvd2dhdGUtZGVtby02$n5+XWm+sm9eqp36ZYTN+dshofOvLv4dLMISd5bBk2zo";

/// (id, name, address, rooms as (id, name, capacity)).
type LocationSeed = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, i64)],
);
/// (id, name, kind, price_cents, interval, class_credits, archived).
type PlanSeed = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    Option<&'static str>,
    Option<i64>,
    bool,
);
/// (id, code, percent_off, amount_off_cents, max_redemptions, archived).
type CouponSeed = (
    &'static str,
    &'static str,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    bool,
);
/// (id, title, duration_seconds, instructor_id, level, visibility, tags).
type ContentSeed = (
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

struct StudioSeed {
    id: &'static str,
    key: &'static str,
    name: &'static str,
    slug: &'static str,
    tier: &'static str,
    timezone: &'static str,
    city: &'static str,
    description: &'static str,
    programs: &'static [(&'static str, &'static str, &'static str, &'static str)],
    instructors: &'static [(&'static str, &'static str, &'static [&'static str], bool)],
    locations: &'static [LocationSeed],
    classes: &'static [ClassSeed],
    /// The class whose next session is seeded exactly full.
    full_class: &'static str,
    members: &'static [&'static str],
    plans: &'static [PlanSeed],
    coupons: &'static [CouponSeed],
    content: &'static [ContentSeed],
    expenses: &'static [(&'static str, &'static str, i64, u32, &'static str)],
    messages: &'static [(usize, &'static str, &'static str)],
}

struct ClassSeed {
    key: &'static str,
    name: &'static str,
    description: &'static str,
    program: &'static str,
    instructor: &'static str,
    location: &'static str,
    room: &'static str,
    minutes: i64,
    capacity: i64,
    price: i64,
    level: &'static str,
    /// (weekday from Monday = 0, hour, minute), UTC.
    slots: &'static [(u32, u32, u32)],
    /// Extra one-off sessions: (days from today, hour).
    one_offs: &'static [(i64, u32)],
    cancelled: bool,
}

const LOTUS: StudioSeed = StudioSeed {
    id: DEMO_PRO_STUDIO,
    key: "lotus",
    name: "Lotus Flow Yoga",
    slug: "lotus-flow-yoga",
    tier: "pro",
    timezone: "America/Los_Angeles",
    city: "Portland",
    description: "Vinyasa, yin and prenatal yoga in two Portland studios.",
    programs: &[
        (
            "prg_lotus_vinyasa",
            "Vinyasa",
            "Flowing, breath-led sequences.",
            "#e4572e",
        ),
        (
            "prg_lotus_yin",
            "Yin & Restore",
            "Slow, long-held floor poses.",
            "#6a4c93",
        ),
        (
            "prg_lotus_prenatal",
            "Prenatal",
            "Gentle yoga for every trimester.",
            "#f4a259",
        ),
        (
            "prg_lotus_workshops",
            "Workshops",
            "Two-hour deep dives.",
            "#2a9d8f",
        ),
    ],
    instructors: &[
        (
            "ins_lotus_maya",
            "Maya Chen",
            &["vinyasa", "arm balances"],
            true,
        ),
        ("ins_lotus_leo", "Leo Park", &["yin", "restorative"], true),
        (
            "ins_lotus_ana",
            "Ana Souza",
            &["prenatal", "breathwork"],
            true,
        ),
        ("ins_lotus_tom", "Tom Reyes", &["aerial"], false),
    ],
    locations: &[
        (
            "loc_lotus_pearl",
            "Pearl District",
            "1120 NW Couch St",
            &[
                ("rm_lotus_sun", "Sun Room", 20),
                ("rm_lotus_moon", "Moon Room", 12),
            ],
        ),
        (
            "loc_lotus_alberta",
            "Alberta Arts",
            "2901 NE Alberta St",
            &[("rm_lotus_garden", "Garden Room", 16)],
        ),
    ],
    classes: &[
        ClassSeed {
            key: "vinyasa",
            name: "Morning Vinyasa",
            description: "Wake up with a strong, steady flow.",
            program: "prg_lotus_vinyasa",
            instructor: "ins_lotus_maya",
            location: "loc_lotus_pearl",
            room: "rm_lotus_sun",
            minutes: 60,
            capacity: 20,
            price: 2200,
            level: "all_levels",
            slots: &[(0, 15, 0), (2, 15, 0), (4, 15, 0)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "power",
            name: "Power Hour",
            description: "A fast, sweaty lunchtime flow.",
            program: "prg_lotus_vinyasa",
            instructor: "ins_lotus_maya",
            location: "loc_lotus_pearl",
            room: "rm_lotus_sun",
            minutes: 60,
            capacity: 20,
            price: 2400,
            level: "intermediate",
            slots: &[(1, 19, 30), (3, 19, 30)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "yin",
            name: "Yin & Candlelight",
            description: "Long holds by candlelight.",
            program: "prg_lotus_yin",
            instructor: "ins_lotus_leo",
            location: "loc_lotus_pearl",
            room: "rm_lotus_moon",
            minutes: 75,
            capacity: 12,
            price: 2000,
            level: "all_levels",
            slots: &[(1, 2, 30), (3, 2, 30)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "restore",
            name: "Sunday Restore",
            description: "Bolsters, blankets and stillness.",
            program: "prg_lotus_yin",
            instructor: "ins_lotus_leo",
            location: "loc_lotus_alberta",
            room: "rm_lotus_garden",
            minutes: 90,
            capacity: 16,
            price: 2500,
            level: "beginner",
            slots: &[(6, 23, 0)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "prenatal",
            name: "Prenatal Flow",
            description: "Strength and ease for expecting parents.",
            program: "prg_lotus_prenatal",
            instructor: "ins_lotus_ana",
            location: "loc_lotus_alberta",
            room: "rm_lotus_garden",
            minutes: 60,
            capacity: 10,
            price: 2500,
            level: "beginner",
            slots: &[(5, 17, 0)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "workshop",
            name: "Arm Balance Workshop",
            description: "Crow, side crow and friends, step by step.",
            program: "prg_lotus_workshops",
            instructor: "ins_lotus_maya",
            location: "loc_lotus_pearl",
            room: "rm_lotus_sun",
            minutes: 120,
            capacity: 20,
            price: 4500,
            level: "advanced",
            slots: &[],
            one_offs: &[(-75, 21), (-45, 21), (-16, 21), (12, 21)],
            cancelled: false,
        },
        ClassSeed {
            key: "aerial",
            name: "Aerial Basics",
            description: "Silks for beginners (discontinued).",
            program: "prg_lotus_vinyasa",
            instructor: "ins_lotus_tom",
            location: "loc_lotus_alberta",
            room: "rm_lotus_garden",
            minutes: 60,
            capacity: 8,
            price: 3000,
            level: "beginner",
            slots: &[(2, 20, 0)],
            one_offs: &[],
            cancelled: true,
        },
        ClassSeed {
            key: "intensive",
            name: "Weekend Intensive",
            description: "A four-hour deep dive: practice, philosophy and a shared lunch.",
            program: "prg_lotus_workshops",
            instructor: "ins_lotus_leo",
            location: "loc_lotus_alberta",
            room: "rm_lotus_garden",
            minutes: 240,
            capacity: 16,
            price: 12000,
            level: "all_levels",
            slots: &[],
            one_offs: &[(-85, 9), (-70, 9), (-56, 9), (-38, 9), (-9, 9), (19, 9)],
            cancelled: false,
        },
    ],
    full_class: "prenatal",
    members: &[
        "Olivia Bennett",
        "Liam Carter",
        "Emma Davis",
        "Noah Evans",
        "Ava Foster",
        "Ethan Garcia",
        "Sophia Hughes",
        "Mason Ito",
        "Isabella Jones",
        "Lucas Kowalski",
        "Mia Lopez",
        "Logan Müller",
        "Charlotte Nguyen",
        "James O'Brien",
        "Amelia Patel",
        "Benjamin Quinn",
        "Harper Rossi",
        "Elijah Schmidt",
        "Evelyn Tanaka",
        "Henry Usman",
        "Abigail Vargas",
        "Jack Wilson",
        "Ella Xu",
        "Owen Young",
    ],
    plans: &[
        (
            "pln_lotus_unlimited",
            "Unlimited Monthly",
            "membership",
            14900,
            Some("month"),
            None,
            false,
        ),
        (
            "pln_lotus_annual",
            "Annual Unlimited",
            "membership",
            149000,
            Some("year"),
            None,
            false,
        ),
        (
            "pln_lotus_pack10",
            "10-Class Pack",
            "class_pack",
            18000,
            None,
            Some(10),
            false,
        ),
        (
            "pln_lotus_dropin",
            "Drop-in",
            "drop_in",
            2200,
            None,
            None,
            false,
        ),
        (
            "pln_lotus_founders",
            "Founders Rate",
            "membership",
            9900,
            Some("month"),
            None,
            true,
        ),
    ],
    coupons: &[
        (
            "cpn_lotus_welcome",
            "WELCOME10",
            Some(10),
            None,
            None,
            false,
        ),
        (
            "cpn_lotus_friend",
            "FRIEND15",
            None,
            Some(1500),
            Some(50),
            false,
        ),
        ("cpn_lotus_summer", "SUMMER25", Some(25), None, None, true),
    ],
    content: &[
        (
            "cnt_lotus_sun",
            "20-Minute Sun Salutations",
            1200,
            "ins_lotus_maya",
            "all_levels",
            "public",
            &["vinyasa", "morning"],
        ),
        (
            "cnt_lotus_hips",
            "Yin for Tight Hips",
            2700,
            "ins_lotus_leo",
            "beginner",
            "members",
            &["yin", "hips"],
        ),
        (
            "cnt_lotus_crow",
            "Crow Pose Breakdown",
            900,
            "ins_lotus_maya",
            "intermediate",
            "members",
            &["arm balances"],
        ),
        (
            "cnt_lotus_prenatal",
            "Prenatal Yoga: Second Trimester",
            2400,
            "ins_lotus_ana",
            "beginner",
            "members",
            &["prenatal"],
        ),
        (
            "cnt_lotus_sleep",
            "Bedtime Restore",
            1800,
            "ins_lotus_leo",
            "all_levels",
            "public",
            &["restorative", "sleep"],
        ),
        (
            "cnt_lotus_draft",
            "Power Flow (unedited)",
            3600,
            "ins_lotus_maya",
            "advanced",
            "hidden",
            &["vinyasa"],
        ),
    ],
    expenses: &[
        ("Pearl District lease", "rent", 150_000, 1, "NW Properties"),
        ("Instructor payroll", "payroll", 120_000, 15, "Gusto"),
        (
            "Electricity and water",
            "utilities",
            28_000,
            20,
            "Portland General",
        ),
        ("Booking software", "software", 9_900, 3, "StudioSoft"),
        (
            "Alberta studio lease",
            "rent",
            90_000,
            1,
            "Alberta Holdings",
        ),
    ],
    messages: &[
        (
            0,
            "Can I freeze my membership?",
            "I'm travelling for three weeks in December. Can I pause my Unlimited Monthly?",
        ),
        (
            4,
            "Prenatal class question",
            "Is Prenatal Flow OK in the first trimester?",
        ),
        (
            7,
            "Lost water bottle",
            "I left a green bottle in the Sun Room on Wednesday.",
        ),
        (
            12,
            "Workshop waitlist",
            "Is there a waitlist for the Arm Balance Workshop?",
        ),
        (
            19,
            "Thank you!",
            "Sunday Restore was exactly what I needed this week.",
        ),
    ],
};

const FREE_SPIRIT: StudioSeed = StudioSeed {
    id: DEMO_FREE_STUDIO,
    key: "fs",
    name: "Free Spirit Pilates",
    slug: "free-spirit-pilates",
    tier: "free",
    timezone: "America/Denver",
    city: "Denver",
    description: "Reformer and mat Pilates on South Broadway.",
    programs: &[
        (
            "prg_fs_reformer",
            "Reformer",
            "Classes on the reformer.",
            "#1d3557",
        ),
        ("prg_fs_mat", "Mat", "Mat Pilates and barre.", "#e63946"),
    ],
    instructors: &[
        ("ins_fs_jo", "Jo Rivera", &["reformer", "rehab"], true),
        ("ins_fs_sky", "Sky Patel", &["mat", "barre"], true),
    ],
    locations: &[(
        "loc_fs_main",
        "Free Spirit Studio",
        "455 S Broadway",
        &[
            ("rm_fs_reformer", "Reformer Room", 8),
            ("rm_fs_mat", "Mat Room", 16),
        ],
    )],
    classes: &[
        ClassSeed {
            key: "reformer",
            name: "Reformer Basics",
            description: "Learn the reformer, spring by spring.",
            program: "prg_fs_reformer",
            instructor: "ins_fs_jo",
            location: "loc_fs_main",
            room: "rm_fs_reformer",
            minutes: 50,
            capacity: 8,
            price: 3500,
            level: "beginner",
            slots: &[(0, 14, 0), (2, 14, 0)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "mat",
            name: "Mat Pilates",
            description: "Classical mat work for core strength.",
            program: "prg_fs_mat",
            instructor: "ins_fs_sky",
            location: "loc_fs_main",
            room: "rm_fs_mat",
            minutes: 45,
            capacity: 16,
            price: 1800,
            level: "all_levels",
            slots: &[(1, 1, 0), (3, 1, 0)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "barre",
            name: "Barre Fusion",
            description: "Pilates meets ballet barre.",
            program: "prg_fs_mat",
            instructor: "ins_fs_sky",
            location: "loc_fs_main",
            room: "rm_fs_mat",
            minutes: 55,
            capacity: 16,
            price: 2000,
            level: "intermediate",
            slots: &[(5, 16, 0)],
            one_offs: &[],
            cancelled: false,
        },
        ClassSeed {
            key: "workshop",
            name: "Reformer Workshop",
            description: "Two hours of jumpboard and advanced springs work.",
            program: "prg_fs_reformer",
            instructor: "ins_fs_jo",
            location: "loc_fs_main",
            room: "rm_fs_reformer",
            minutes: 120,
            capacity: 8,
            price: 6500,
            level: "advanced",
            slots: &[],
            one_offs: &[(-80, 18), (-50, 18), (-22, 18), (16, 18)],
            cancelled: false,
        },
    ],
    full_class: "barre",
    members: &[
        "Aria Brooks",
        "Caleb Diaz",
        "Chloe Edwards",
        "Daniel Fischer",
        "Grace Hall",
        "Isaac Ivanov",
        "Layla Johnson",
        "Mateo King",
        "Nora Lindqvist",
        "Ryan Morales",
        "Stella Novak",
        "Theo Ortiz",
    ],
    plans: &[
        (
            "pln_fs_monthly",
            "Monthly Unlimited",
            "membership",
            12900,
            Some("month"),
            None,
            false,
        ),
        (
            "pln_fs_pack5",
            "5-Class Pack",
            "class_pack",
            8500,
            None,
            Some(5),
            false,
        ),
        (
            "pln_fs_intro",
            "Intro Offer",
            "drop_in",
            1500,
            None,
            None,
            true,
        ),
    ],
    coupons: &[
        ("cpn_fs_first", "FIRST50", Some(50), None, Some(100), false),
        ("cpn_fs_spring", "SPRING20", Some(20), None, None, true),
    ],
    content: &[
        (
            "cnt_fs_core",
            "10-Minute Core Wake-up",
            600,
            "ins_fs_sky",
            "all_levels",
            "public",
            &["mat", "core"],
        ),
        (
            "cnt_fs_springs",
            "Reformer Springs Explained",
            900,
            "ins_fs_jo",
            "beginner",
            "members",
            &["reformer"],
        ),
        (
            "cnt_fs_barre",
            "Barre at Home",
            1800,
            "ins_fs_sky",
            "intermediate",
            "members",
            &["barre"],
        ),
    ],
    expenses: &[
        ("Studio lease", "rent", 90_000, 1, "Broadway Realty"),
        ("Instructor payroll", "payroll", 60_000, 15, "Gusto"),
        ("Utilities", "utilities", 15_000, 20, "Xcel Energy"),
        ("Scheduling app", "software", 4_900, 3, "StudioSoft"),
    ],
    messages: &[
        (
            1,
            "Reformer for beginners?",
            "I've never used a reformer. Is Reformer Basics the right class?",
        ),
        (
            5,
            "Parking",
            "Where is the best place to park near the studio?",
        ),
        (9, "Barre socks", "Do I need grip socks for Barre Fusion?"),
    ],
};

/// A deterministic pseudo-random number from a seed (splitmix64).
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Create both demo studios.
pub async fn seed(pool: &SqlitePool, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for studio in [&LOTUS, &FREE_SPIRIT] {
        seed_studio(&mut tx, studio, now).await?;
    }
    tx.commit().await
}

struct Occ {
    id: String,
    starts: DateTime<Utc>,
    capacity: i64,
    price: i64,
    cancelled: bool,
    class_key: &'static str,
}

async fn seed_studio(
    tx: &mut Transaction<'static, Sqlite>,
    s: &StudioSeed,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let today = now.date_naive();
    let at = |d: NaiveDate, h: u32, m: u32| {
        d.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default())
            .and_utc()
    };
    sqlx::query("INSERT INTO studios (id, name, slug, tier, timezone, currency, city, country, description) VALUES (?, ?, ?, ?, ?, 'USD', ?, 'US', ?)")
        .bind(s.id).bind(s.name).bind(s.slug).bind(s.tier).bind(s.timezone).bind(s.city).bind(s.description)
        .execute(&mut **tx).await?;
    for u in DEMO_USERS.iter().filter(|u| u.studio_id == s.id) {
        sqlx::query("INSERT INTO users (id, studio_id, email, name, role, password_hash) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(u.user_id).bind(s.id).bind(u.email).bind(u.name).bind(u.role).bind(u.password_hash)
            .execute(&mut **tx).await?;
    }
    for (id, name, description, color) in s.programs {
        sqlx::query(
            "INSERT INTO programs (id, studio_id, name, description, color) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(s.id)
        .bind(name)
        .bind(description)
        .bind(color)
        .execute(&mut **tx)
        .await?;
    }
    for (id, name, specialties, active) in s.instructors {
        let email = format!(
            "{}@{}.example",
            name.split(' ').next().unwrap_or("x").to_lowercase(),
            s.slug
        );
        sqlx::query("INSERT INTO instructors (id, studio_id, name, email, bio, specialties, active) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(id).bind(s.id).bind(name).bind(email)
            .bind(format!("{name} teaches {} at {}.", specialties.join(" and "), s.name))
            .bind(json!(specialties).to_string()).bind(active)
            .execute(&mut **tx).await?;
    }
    for (id, name, address, rooms) in s.locations {
        sqlx::query("INSERT INTO locations (id, studio_id, name, address, city, timezone) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id).bind(s.id).bind(name).bind(address).bind(s.city).bind(s.timezone)
            .execute(&mut **tx).await?;
        for (room, room_name, capacity) in *rooms {
            sqlx::query("INSERT INTO rooms (id, studio_id, location_id, name, capacity) VALUES (?, ?, ?, ?, ?)")
                .bind(room).bind(s.id).bind(id).bind(room_name).bind(capacity)
                .execute(&mut **tx).await?;
        }
    }
    for (id, name, kind, price, interval, credits, archived) in s.plans {
        sqlx::query("INSERT INTO plans (id, studio_id, name, description, kind, price_cents, currency, interval, class_credits, status) VALUES (?, ?, ?, NULL, ?, ?, 'USD', ?, ?, ?)")
            .bind(id).bind(s.id).bind(name).bind(kind).bind(price).bind(interval).bind(credits)
            .bind(if *archived { "archived" } else { "active" })
            .execute(&mut **tx).await?;
    }
    for (id, code, percent, amount, max, archived) in s.coupons {
        sqlx::query("INSERT INTO coupons (id, studio_id, code, description, percent_off, amount_off_cents, currency, max_redemptions, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id).bind(s.id).bind(code).bind(format!("{code} discount"))
            .bind(percent).bind(amount).bind(amount.map(|_| "USD")).bind(max)
            .bind(if *archived { "archived" } else { "active" })
            .execute(&mut **tx).await?;
    }
    for (id, title, seconds, instructor, level, visibility, tags) in s.content {
        sqlx::query("INSERT INTO content (id, studio_id, title, description, duration_seconds, instructor_id, level, visibility, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id).bind(s.id).bind(title).bind(format!("{title}, recorded at {}.", s.name))
            .bind(seconds).bind(instructor).bind(level).bind(visibility).bind(json!(tags).to_string())
            .execute(&mut **tx).await?;
    }

    // Members: a few VIPs, guests and staff; the last two are still invited; every third holds
    // the first membership plan; every fifth had the archived/other plan and cancelled it.
    let member_plan = s
        .plans
        .iter()
        .find(|p| p.2 == "membership" && !p.6)
        .map(|p| p.0);
    let old_plan = s
        .plans
        .iter()
        .find(|p| p.2 == "membership" && p.6)
        .or(s.plans.first())
        .map(|p| p.0);
    let mut members: Vec<(String, bool)> = Vec::new(); // (id, holds an active membership)
    for (i, name) in s.members.iter().enumerate() {
        let id = format!("mem_{}_{:02}", s.key, i + 1);
        let role = match i {
            5 => "staff",
            _ if i % 9 == 3 => "vip",
            _ if i % 11 == 7 => "guest",
            _ => "member",
        };
        let invited = i + 2 >= s.members.len();
        let email = format!(
            "{}@example.com",
            name.to_lowercase()
                .replace([' ', '\''], ".")
                .replace('ü', "u")
        );
        let started = fmt_time(now - Duration::days(40 + 9 * i as i64));
        let (plan, status, cancelled_at) = if invited {
            (None, None, None)
        } else if i % 3 == 0 {
            (member_plan, Some("active"), None)
        } else if i % 5 == 2 {
            (
                old_plan,
                Some("cancelled"),
                Some(fmt_time(now - Duration::days(10 + i as i64))),
            )
        } else {
            (None, None, None)
        };
        sqlx::query("INSERT INTO members (id, studio_id, name, email, phone, role, status, membership_plan_id, membership_status, membership_started_at, membership_cancelled_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&id).bind(s.id).bind(name).bind(email)
            .bind(format!("+1-555-01{:02}", i + 10)).bind(role)
            .bind(if invited { "invited" } else { "active" })
            .bind(plan).bind(status).bind(plan.map(|_| started.clone())).bind(cancelled_at)
            .bind(fmt_time(now - Duration::days(60 + 9 * i as i64)))
            .execute(&mut **tx).await?;
        if !invited {
            members.push((id, status == Some("active")));
        }
    }

    // Classes and their occurrences.
    let mut occs: Vec<Occ> = Vec::new();
    for c in s.classes {
        let class_id = format!("cls_{}_{}", s.key, c.key);
        sqlx::query("INSERT INTO classes (id, studio_id, name, description, program_id, instructor_id, location_id, room_id, duration_minutes, capacity, price_cents, currency, level, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'USD', ?, ?, ?)")
            .bind(&class_id).bind(s.id).bind(c.name).bind(c.description).bind(c.program)
            .bind(c.instructor).bind(c.location).bind(c.room).bind(c.minutes).bind(c.capacity)
            .bind(c.price).bind(c.level).bind(if c.cancelled { "cancelled" } else { "active" })
            .bind(fmt_time(now - Duration::days(120)))
            .execute(&mut **tx).await?;
        let mut starts: Vec<DateTime<Utc>> = Vec::new();
        for offset in -28..21i64 {
            let day = today
                .checked_add_signed(Duration::days(offset))
                .unwrap_or(today);
            for (weekday, h, m) in c.slots {
                if day.weekday().num_days_from_monday() == *weekday {
                    starts.push(at(day, *h, *m));
                }
            }
        }
        for (offset, h) in c.one_offs {
            starts.push(at(
                today
                    .checked_add_signed(Duration::days(*offset))
                    .unwrap_or(today),
                *h,
                0,
            ));
        }
        starts.sort();
        for (n, st) in starts.into_iter().enumerate() {
            let id = format!("occ_{}_{}_{:03}", s.key, c.key, n + 1);
            let cancelled = c.cancelled && st > now;
            sqlx::query("INSERT INTO occurrences (id, studio_id, class_id, starts_at, ends_at, instructor_id, room_id, location_id, status, capacity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&id).bind(s.id).bind(&class_id).bind(fmt_time(st))
                .bind(fmt_time(st + Duration::minutes(c.minutes))).bind(c.instructor).bind(c.room)
                .bind(c.location).bind(if cancelled { "cancelled" } else { "scheduled" }).bind(c.capacity)
                .execute(&mut **tx).await?;
            occs.push(Occ {
                id,
                starts: st,
                capacity: c.capacity,
                price: c.price,
                cancelled,
                class_key: c.key,
            });
        }
    }

    // Bookings: 35..100% full; the next session of `full_class` is exactly full. Past sessions
    // were attended (a few cancelled, some refunded); cancelled sessions had their bookings
    // cancelled and refunded.
    let first_full = occs
        .iter()
        .position(|o| o.starts > now && o.class_key == s.full_class && !o.cancelled);
    let welcome = s.coupons.first().map(|c| (c.0, c.2.unwrap_or(0)));
    let mut redeemed = 0i64;
    let mut n = 0usize;
    for (k, o) in occs.iter().enumerate() {
        let r = mix(k as u64 * 31 + s.key.len() as u64);
        let fill = 35 + (r % 66) as i64;
        let mut count = (o.capacity * fill / 100).max(1).min(members.len() as i64);
        if Some(k) == first_full {
            count = o.capacity.min(members.len() as i64);
        }
        let past = o.starts <= now;
        for j in 0..count as usize {
            // Consecutive members from a random start: never the same member twice in a session.
            let (member, has_plan) = &members[(r as usize / 7 + j) % members.len()];
            let rj = mix(r ^ j as u64);
            n += 1;
            let (mut price, plan) = if *has_plan {
                (0, member_plan)
            } else {
                (o.price, None)
            };
            let mut coupon = None;
            if price > 0
                && rj.is_multiple_of(6)
                && let Some((cid, pct)) = welcome
            {
                price -= price * pct / 100;
                coupon = Some(cid);
                redeemed += 1;
            }
            let created =
                (o.starts - Duration::days(1 + (rj % 6) as i64)).min(now - Duration::hours(1));
            let (status, refund, cancelled_at) = if o.cancelled {
                ("cancelled", price, Some(created + Duration::hours(2)))
            } else if Some(k) != first_full && rj % 9 == 4 {
                (
                    "cancelled",
                    if rj.is_multiple_of(2) { price } else { 0 },
                    Some(created + Duration::hours(5)),
                )
            } else if past {
                ("attended", 0, None)
            } else {
                ("booked", 0, None)
            };
            sqlx::query("INSERT INTO bookings (id, studio_id, occurrence_id, member_id, status, price_cents, currency, plan_id, coupon_id, refund_cents, created_at, cancelled_at) VALUES (?, ?, ?, ?, ?, ?, 'USD', ?, ?, ?, ?, ?)")
                .bind(format!("bkg_{}_{:04}", s.key, n)).bind(s.id).bind(&o.id).bind(member)
                .bind(status).bind(price).bind(plan).bind(coupon).bind(refund)
                .bind(fmt_time(created)).bind(cancelled_at.map(|t| fmt_time(t.min(now))))
                .execute(&mut **tx).await?;
        }
    }
    if let Some((cid, _)) = welcome {
        sqlx::query("UPDATE coupons SET times_redeemed = ? WHERE id = ?")
            .bind(redeemed)
            .bind(cid)
            .execute(&mut **tx)
            .await?;
    }

    // Expenses: the recurring ones in each of the last three months (not in the future), plus a
    // marketing push last month and new equipment two months ago.
    let month_start = today.with_day(1).unwrap_or(today);
    let mut e = 0usize;
    for m in 0..3u32 {
        let month = month_start - Months::new(m);
        let mut items: Vec<(&str, &str, i64, u32, &str)> = s.expenses.to_vec();
        if m == 1 {
            items.push((
                "Instagram ads",
                "marketing",
                45_000 / (1 + s.key.len() as i64 % 2),
                8,
                "Meta",
            ));
        }
        if m == 2 {
            items.push((
                "Mats, blocks and straps",
                "equipment",
                64_000,
                11,
                "Studio Supply Co",
            ));
        }
        for (description, category, amount, day, vendor) in items {
            let Some(date) = month.with_day(day) else {
                continue;
            };
            if date > today {
                continue;
            }
            e += 1;
            let amount = amount + (mix(e as u64 + m as u64 * 100) % 5_000) as i64;
            sqlx::query("INSERT INTO expenses (id, studio_id, description, category, amount_cents, currency, incurred_on, vendor) VALUES (?, ?, ?, ?, ?, 'USD', ?, ?)")
                .bind(format!("exp_{}_{:03}", s.key, e)).bind(s.id).bind(description).bind(category)
                .bind(amount).bind(date.to_string()).bind(vendor)
                .execute(&mut **tx).await?;
        }
    }

    // Messages received from members.
    for (i, (member, subject, body)) in s.messages.iter().enumerate() {
        let from = &members[*member % members.len()].0;
        let sent = now - Duration::hours(7 + 29 * i as i64);
        sqlx::query("INSERT INTO messages (id, studio_id, direction, member_ids, subject, body, sent_at) VALUES (?, ?, 'received', ?, ?, ?, ?)")
            .bind(format!("msg_{}_{:02}", s.key, i + 1)).bind(s.id).bind(json!([from]).to_string())
            .bind(subject).bind(body).bind(fmt_time(sent))
            .execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use argon2::Argon2;
    use argon2::password_hash::{PasswordHasher, SaltString};

    /// Prints the PHC strings pasted into `HASHES` (run with `--ignored --nocapture`).
    #[test]
    #[ignore = "generator for the precomputed demo password hashes"]
    fn print_demo_hashes() {
        let passwords: Vec<&str> = super::DEMO_USERS
            .iter()
            .map(|u| u.password)
            .chain(["not-a-real-password"])
            .collect();
        for (i, p) in passwords.iter().enumerate() {
            let salt = SaltString::encode_b64(format!("flowgate-demo-{i}").as_bytes()).unwrap();
            let hash = Argon2::default()
                .hash_password(p.as_bytes(), &salt)
                .unwrap();
            println!("{hash}");
        }
    }
}
