//! The `todoke` command line. Errors are reported here, with their context;
//! everything below returns typed errors.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use todoke::digits::{self, DigitReader};
use todoke::i18n::{ta, Lang};

#[derive(Parser)]
#[command(
    name = "todoke",
    about = "Scanned health forms in, validated core-system batches out",
    disable_version_flag = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Log as JSON lines instead of text (logs never carry personal data).
    #[arg(long, global = true)]
    log_json: bool,
    /// Print the version, and the forms, digit model and pdfium this todoke
    /// uses (where each was found, its versions or sha256).
    #[arg(short = 'V', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Process every scan under INBOX (first-level folders are branches) into one batch.
    Run {
        inbox: PathBuf,
        /// Resident register CSV (UTF-8 or CP932).
        #[arg(long)]
        register: PathBuf,
        /// Output folder; the batch goes to OUT/batches/<batch-id>/.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Batch id (default: local start time, YYYYMMDD-HHMMSS).
        #[arg(long)]
        batch_id: Option<String>,
        /// Language of what staff read (default: [ui] lang, else ja).
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
    /// Printable blank forms drawn from the templates.
    Forms {
        #[command(subcommand)]
        command: FormsCommand,
    },
    /// Write filled, scanned-looking sample pages with truth files and a register.
    Synth {
        /// pregnancy-notification or infant-checkup (default: both).
        #[arg(long)]
        form: Option<String>,
        #[arg(long, default_value_t = 20)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Scan resolution (default: 200, 300 or 400 dpi, drawn per page).
        #[arg(long)]
        dpi: Option<u32>,
        #[arg(long, value_delimiter = ',', default_value = "honcho,sakura")]
        branches: Vec<String>,
        #[arg(long)]
        forms_dir: Option<PathBuf>,
        /// Whose handwriting: the training split, the validation fold only
        /// (to pick thresholds on) or the evaluation split (to measure on).
        #[arg(long, value_enum, default_value_t)]
        digits: todoke::synth::DigitSource,
        /// Language of the summary line (default: ja).
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
    /// The handwritten digit reader.
    Digits {
        #[command(subcommand)]
        command: DigitsCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Create a working folder: DIR/todoke.toml, a copy of the shipped templates in
    /// DIR/forms/, DIR/inbox/<branch>/, DIR/out/, DIR/work/, the ledger.
    Init {
        dir: PathBuf,
        /// Templates to copy into DIR/forms/ (default: the shipped ones).
        #[arg(long)]
        forms_dir: Option<PathBuf>,
        /// Account to give the folder to (default, when run as root: `todoke`,
        /// the daemon's account the package makes, if it exists).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Watch every branch inbox, read each scan once it is complete, close batches on schedule.
    Watch {
        #[arg(long)]
        config: PathBuf,
    },
    /// Batches of the watch daemon.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// Scans by state, backlog per branch, last batch, unhealthy inboxes.
    Status {
        #[arg(long)]
        config: PathBuf,
        /// Language of what staff read (default: [ui] lang, else ja).
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
    /// Serve the mismatch review page on this machine; prints its URL with the access token.
    Review {
        #[arg(long)]
        config: PathBuf,
        /// Port (default: [review] port; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Reviewer name recorded with every decision (default: [review] reviewer, else asked).
        #[arg(long)]
        reviewer: Option<String>,
        /// Language of what staff read (default: [ui] lang, else ja).
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
    /// Count the questionnaire answers of published batches (and review corrections) as the
    /// national survey asks: tally.csv, tally.json, tally.html in OUT.
    Tally {
        /// The daemon's settings: its batches, templates and ledger.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Batch folders written by `todoke run` (OUT/batches); default: the daemon's.
        #[arg(long)]
        batches: Option<PathBuf>,
        /// First day (YYYY-MM-DD); default: this fiscal year's 1 April.
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD); default: this fiscal year's 31 March.
        #[arg(long)]
        to: Option<String>,
        /// Columns per branch or per month besides the total.
        #[arg(long, value_enum)]
        by: Option<todoke::tally::GroupBy>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Show, stage by stage, what the reader saw on one scan: per page OUT/page-N/ with
    /// 1-decoded.png, 2-registered.png, 3-read.png (as far as the page got), explain.txt and
    /// explain.json. Same reading as `run` and `watch`; no batch, no ledger.
    Explain {
        file: PathBuf,
        /// Only this page (1-based) of a multi-page file.
        #[arg(long)]
        page: Option<usize>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Resident register CSV (default: [watch] register of --config, if it exists;
        /// without one, no page can match).
        #[arg(long)]
        register: Option<PathBuf>,
        /// Language of explain.txt (default: [ui] lang, else ja).
        #[arg(long, value_enum)]
        lang: Option<Lang>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the review audit log: who changed what, when.
    Audit {
        #[arg(long)]
        config: PathBuf,
        /// Only entries at or after this date (YYYY-MM-DD) or time.
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BatchCommand {
    /// Close a batch now with everything read since the last close.
    Close {
        #[arg(long)]
        config: PathBuf,
        /// Language of what staff read (default: [ui] lang, else ja).
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
}

#[derive(Subcommand)]
enum FormsCommand {
    /// Draw FORM (PNG or PDF by the --out extension).
    Render {
        form: String,
        #[arg(long)]
        side: Option<String>,
        #[arg(long, default_value_t = 300.0)]
        dpi: f64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        forms_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DigitsCommand {
    /// Print `file,digit,confidence,second,second_confidence` for every PNG cell in DIR.
    Classify {
        dir: PathBuf,
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Write every handwritten digit cell of the scans given (files or folders) as a PNG
    /// into OUT, for a person to sort into OUT/0 … OUT/9 and OUT/blank; My Number cells
    /// are left out. `todoke bench digits --labelled OUT` then measures the reader on them.
    Cells {
        #[arg(required = true)]
        scans: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Train the digit model from the MNIST training split and synthetic cells.
    Train {
        #[arg(long, default_value = "models/digits.safetensors")]
        out: PathBuf,
        #[arg(long, default_value_t = 20)]
        epochs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Channels 16 and 32 instead of 32 and 64: a quarter of the work, for ensembles.
        #[arg(long)]
        small: bool,
        /// Read digits deskewed (slant taken out) before the network.
        #[arg(long)]
        deskew: bool,
    },
    /// Join models trained from different seeds into one ensemble model file,
    /// its temperature fitted on the validation fold.
    Ensemble {
        #[arg(long, default_value = "models/digits.safetensors")]
        out: PathBuf,
        #[arg(required = true)]
        members: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Accuracy, blank detection, risk-coverage and speed on held-out digits.
    Digits {
        #[arg(long)]
        model: Option<PathBuf>,
        /// Instead: cells a person labelled, DIR/0 … DIR/9 and DIR/blank (from `todoke digits cells`).
        #[arg(long)]
        labelled: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let command = match (cli.version, cli.command) {
        (true, _) => {
            print!("{}", todoke::paths::Inventory::gather().text());
            return;
        }
        (false, Some(c)) => c,
        (false, None) => {
            // arg_required_else_help covers a bare `todoke`; this is `todoke --log-json`.
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            std::process::exit(2);
        }
    };
    // The daemon reports what it takes and reads; one-shot commands only warn.
    let (json, level) = match &command {
        Command::Watch { config } | Command::Review { config, .. } => (
            todoke::config::Config::load(config).is_ok_and(|c| c.log.format == "json"),
            "info",
        ),
        _ => (false, "warn"),
    };
    init_logging(cli.log_json || json, level);
    let lang = staff_lang(&command);
    if let Err(e) = dispatch(command) {
        match staff_message(&e, lang) {
            Some(text) => eprintln!("todoke: {text}"),
            None => eprintln!("todoke: {e:#}"),
        }
        std::process::exit(1);
    }
}

/// The language staff read for this command: its `--lang`, else the
/// settings' `[ui] lang`, else Japanese.
fn staff_lang(command: &Command) -> Lang {
    let (config, lang) = match command {
        Command::Run { config, lang, .. } => (config.as_deref(), *lang),
        Command::Status { config, lang }
        | Command::Review { config, lang, .. }
        | Command::Batch {
            command: BatchCommand::Close { config, lang },
        } => (Some(config.as_path()), *lang),
        Command::Watch { config } | Command::Audit { config, .. } => (Some(config.as_path()), None),
        Command::Tally { config, .. } => (config.as_deref(), None),
        _ => (None, None),
    };
    lang.or_else(|| Some(todoke::config::Config::load(config?).ok()?.ui.lang))
        .unwrap_or_default()
}

/// Errors staff may meet and must understand, in their language; the rest
/// are for IT and stay as the error says.
fn staff_message(e: &anyhow::Error, lang: Lang) -> Option<String> {
    use todoke::ledger::LedgerError;
    e.chain().find_map(|cause| match ledger_error(cause)? {
        LedgerError::NewerSchema { path, found, known } => Some(ta(
            lang,
            "ledger-newer-schema",
            &[
                ("path", path.display().to_string().into()),
                ("found", (*found).into()),
                ("known", (*known).into()),
            ],
        )),
        _ => None,
    })
}

fn init_logging(json: bool, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TODOKE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_reader(model: Option<PathBuf>) -> anyhow::Result<digits::cnn::CnnReader> {
    let path = model.unwrap_or_else(digits::cnn::default_model_path);
    digits::cnn::CnnReader::load(&path)
        .with_context(|| format!("loading digit model {}", path.display()))
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            inbox,
            register,
            out,
            config,
            batch_id,
            lang,
        } => {
            let mut config = todoke::pipeline::load_config(config.as_deref())?;
            let lang = lang.unwrap_or(config.ui.lang);
            config.ui.lang = lang;
            let reader = load_reader(config.model.clone())?;
            let opts = todoke::pipeline::RunOptions {
                inbox,
                register,
                out,
                config,
                batch_id,
            };
            let s = todoke::pipeline::run(&opts, &reader as &dyn DigitReader)?;
            // The `batch:` and `report:` keys stay in every language, like
            // reason codes: scripts and the import robot's wrapper read them.
            println!("batch: {}", s.batch_dir.display());
            println!("report: {}", s.batch_dir.join("report.html").display());
            println!("{}", s.batch.text(lang));
            println!(
                "{}",
                ta(
                    lang,
                    "summary-run",
                    &[
                        ("files", s.files.into()),
                        ("pages", s.pages.into()),
                        ("quarantined", s.quarantined.into()),
                        ("seconds", format!("{:.1}", s.seconds).into()),
                        (
                            "rate",
                            format!("{:.1}", s.pages as f64 / s.seconds.max(1e-9)).into()
                        ),
                        (
                            "memory",
                            s.peak_rss_mb
                                .map(|m| format!("{m:.0} MB"))
                                .unwrap_or_else(|| todoke::i18n::t(lang, "summary-unknown"))
                                .into()
                        ),
                    ]
                )
            );
        }
        Command::Forms {
            command:
                FormsCommand::Render {
                    form,
                    side,
                    dpi,
                    out,
                    forms_dir,
                },
        } => {
            let dir = forms_dir.unwrap_or_else(todoke::config::default_forms_dir);
            todoke::render::render_cli(&dir, &form, side.as_deref(), dpi, &out)?;
            println!("{}", out.display());
        }
        Command::Synth {
            form,
            count,
            seed,
            out,
            dpi,
            branches,
            forms_dir,
            digits: digit_source,
            lang,
        } => {
            let lang = lang.unwrap_or_default();
            let opts = todoke::synth::SynthOptions {
                forms_dir: forms_dir.unwrap_or_else(todoke::config::default_forms_dir),
                mnist_dir: digits::mnist::default_dir(),
                form,
                count,
                seed,
                out,
                branches,
                dpi,
                digits: digit_source,
            };
            let progress = todoke::progress::Progress::pages(count, lang, "progress-synth");
            let s = todoke::synth::synth_with_progress(&opts, &|n| progress.done(n))?;
            progress.finish();
            println!(
                "{}",
                ta(
                    lang,
                    "summary-synth",
                    &[
                        ("pages", s.pages.into()),
                        ("files", s.files.into()),
                        ("read", s.read_pages.into()),
                        ("turned", s.upside_down.into()),
                        ("mismatches", s.mismatches.values().sum::<usize>().into()),
                        ("rows", s.register_rows.into()),
                        ("out", opts.out.display().to_string().into()),
                    ]
                )
            );
        }
        Command::Digits {
            command: DigitsCommand::Classify { dir, model },
        } => {
            let reader = load_reader(model)?;
            let stdout = std::io::stdout();
            digits::classify_dir(&reader, &dir, &mut stdout.lock())?;
        }
        Command::Digits {
            command:
                DigitsCommand::Train {
                    out,
                    epochs,
                    seed,
                    small,
                    deskew,
                },
        } => {
            let report = digits::train::train(&digits::train::TrainOptions {
                mnist_dir: digits::mnist::default_dir(),
                out,
                epochs,
                seed,
                arch: if small {
                    digits::cnn::SMALL_ARCH
                } else {
                    digits::cnn::ARCH
                },
                deskew,
            })?;
            println!("{report}");
        }
        Command::Digits {
            command: DigitsCommand::Ensemble { out, members },
        } => {
            let report = digits::train::ensemble(&members, &out, &digits::mnist::default_dir())?;
            println!("{report}");
        }
        Command::Bench {
            command: BenchCommand::Digits { model, labelled },
        } => {
            let reader = load_reader(model)?;
            let stdout = std::io::stdout();
            match labelled {
                Some(dir) => digits::bench::bench_labelled(&reader, &dir, &mut stdout.lock())?,
                None => digits::bench::bench(
                    &reader,
                    &digits::mnist::default_dir(),
                    &mut stdout.lock(),
                )?,
            }
        }
        Command::Digits {
            command: DigitsCommand::Cells { scans, out, config },
        } => {
            let config = todoke::pipeline::load_config(config.as_deref())?;
            let mut files = Vec::new();
            for p in scans {
                match p.is_dir() {
                    true => files.extend(todoke::intake::collect(&p)?.into_iter().map(|s| s.path)),
                    false => files.push(p),
                }
            }
            let done = todoke::pipeline::export_cells(&files, &config, &out)?;
            for why in &done.skipped {
                eprintln!("skipped {why}");
            }
            let o = out.display();
            println!(
                "{} cells from {} read sides of {} files written to {o}; sort them into {o}/0 … {o}/9 and {o}/blank, then: todoke bench digits --labelled {o}",
                done.cells.len(),
                done.pages,
                done.files,
            );
        }
        Command::Init {
            dir,
            forms_dir,
            owner,
        } => {
            let forms = forms_dir.unwrap_or_else(todoke::config::default_forms_dir);
            let forms = std::fs::canonicalize(&forms)
                .with_context(|| format!("form templates {}", forms.display()))?;
            // As root, the folder is for the daemon, which runs as `todoke`.
            let owner = owner.or_else(|| {
                let root = unsafe { libc::geteuid() } == 0;
                (root && todoke::watch::system_user("todoke").is_some()).then(|| "todoke".into())
            });
            let made = todoke::watch::init(&dir, &forms, owner.as_deref())?;
            println!("settings: {}", made.settings.display());
            println!(
                "forms: {} ({} copied from {}, {} already there kept)",
                made.forms.display(),
                made.copied,
                forms.display(),
                made.kept
            );
            if let Some(o) = &made.owner {
                println!("owner: {o}");
            }
            println!(
                "next: put the register export where [watch] register says, then run\n  todoke watch --config {}",
                made.settings.display()
            );
        }
        Command::Watch { config } => {
            let cfg = load_settings(&config)?;
            let model = todoke::paths::locate(todoke::paths::Asset::Model, cfg.model.as_deref());
            let pdfium = todoke::paths::locate(todoke::paths::Asset::Pdfium, cfg.pdfium.as_deref());
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                forms = %cfg.forms_dir.display(),
                model = %model.path.display(),
                pdfium = %pdfium.path.display(),
                "starting"
            );
            let reader = load_reader(cfg.model.clone())?;
            let engine = todoke::pipeline::Engine::new(&cfg, &cfg.watch.register, &reader)?;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(sig, stop.clone())
                    .context("installing signal handlers")?;
            }
            let mut daemon = todoke::watch::Daemon::new(cfg, engine)?;
            daemon.run(stop)?;
        }
        Command::Batch {
            command: BatchCommand::Close { config, lang },
        } => {
            let mut cfg = load_settings(&config)?;
            let lang = lang.unwrap_or(cfg.ui.lang);
            cfg.ui.lang = lang;
            let reader = load_reader(cfg.model.clone())?;
            let engine = todoke::pipeline::Engine::new(&cfg, &cfg.watch.register, &reader)?;
            let mut ledger = todoke::ledger::Ledger::open(&cfg.watch.state)?;
            let closed = todoke::watch::close_batch(&mut ledger, &engine, &cfg)?;
            println!("batch: {}", closed.dir.display());
            println!("{}", closed.summary.text(lang));
        }
        Command::Status { config, lang } => {
            let cfg = load_settings(&config)?;
            let lang = lang.unwrap_or(cfg.ui.lang);
            print!("{}", todoke::watch::status_text(&cfg, lang)?);
        }
        Command::Review {
            config,
            port,
            reviewer,
            lang,
        } => {
            let mut cfg = load_settings(&config)?;
            cfg.ui.lang = lang.unwrap_or(cfg.ui.lang);
            let opts = todoke::serve::ReviewOptions {
                bind: cfg.review.bind.clone(),
                port: port.unwrap_or(cfg.review.port),
                reviewer: reviewer.or_else(|| Some(cfg.review.reviewer.clone())),
            };
            let server = todoke::serve::ReviewServer::start(cfg, &opts)?;
            println!("review: {}", server.url);
            use std::io::Write;
            std::io::stdout().flush().ok();
            server.run()?;
        }
        Command::Tally {
            config,
            batches,
            from,
            to,
            by,
            out,
        } => {
            let cfg = todoke::pipeline::load_config(config.as_deref())?;
            let batches = match (batches, &config) {
                (Some(b), _) => b,
                (None, Some(_)) => cfg.watch.out.join("batches"),
                (None, None) => {
                    anyhow::bail!("give --config (the daemon's) or --batches OUT/batches")
                }
            };
            let fy = todoke::tally::fiscal_year(chrono::Local::now().date_naive());
            let date = |d: Option<String>, default| -> anyhow::Result<_> {
                Ok(match d {
                    Some(d) => todoke::tally::parse_date(&d)?,
                    None => default,
                })
            };
            let opts = todoke::tally::TallyOptions {
                forms_dir: cfg.forms_dir.clone(),
                batches,
                ledger: config.is_some().then(|| cfg.watch.state.clone()),
                period: todoke::tally::Period {
                    from: date(from, fy.from)?,
                    to: date(to, fy.to)?,
                },
                by,
                out: out.clone(),
            };
            let t = todoke::tally::run(&opts)?;
            println!("tally: {}", out.join("tally.html").display());
            let lang = cfg.ui.lang;
            let empty = if t.pages() == 0 {
                todoke::i18n::t(lang, "tally-empty")
            } else {
                String::new()
            };
            println!(
                "{}{empty}",
                todoke::i18n::ta(
                    lang,
                    "tally-summary",
                    &[
                        ("from", t.period.from.to_string().into()),
                        ("to", t.period.to.to_string().into()),
                        ("pages", t.pages().into()),
                        ("open", t.not_yet_counted().into()),
                    ]
                )
            );
        }
        Command::Explain {
            file,
            page,
            config,
            register,
            lang,
            out,
        } => {
            let mut cfg = todoke::pipeline::load_config(config.as_deref())?;
            let lang = lang.unwrap_or(cfg.ui.lang);
            cfg.ui.lang = lang;
            let register = register
                .or_else(|| config.is_some().then(|| cfg.watch.register.clone()))
                .filter(|p| p.exists());
            let reader = load_reader(cfg.model.clone())?;
            let engine = match &register {
                Some(r) => todoke::pipeline::Engine::new(&cfg, r, &reader)?,
                None => todoke::pipeline::Engine::with_register(
                    &cfg,
                    todoke::matching::Register::empty(),
                    &reader,
                )?,
            };
            let explained = engine.explain(&file, page);
            let done = todoke::explain::write(
                &out,
                &explained,
                &engine.templates,
                engine.register_rows(),
                page,
                lang,
            )?;
            // Codes and paths only: nothing read from the page is printed.
            if let Some(reason) = &done.file_failed {
                let code = reason.split(':').next().unwrap_or(reason);
                println!(
                    "{}",
                    ta(
                        lang,
                        "ex-printed-file",
                        &[
                            ("reason", code.into()),
                            ("dir", out.display().to_string().into())
                        ]
                    )
                );
            }
            for p in &done.pages {
                let reasons = if p.reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.reasons.join(", "))
                };
                println!(
                    "{}",
                    ta(
                        lang,
                        "ex-printed",
                        &[
                            ("page", p.page.into()),
                            ("status", todoke::i18n::page_status(lang, &p.status).into()),
                            ("reasons", reasons.into()),
                            ("dir", p.dir.display().to_string().into()),
                        ]
                    )
                );
            }
        }
        Command::Audit {
            config,
            since,
            json,
        } => {
            let cfg = load_settings(&config)?;
            let ledger = todoke::ledger::Ledger::open(&cfg.watch.state)?;
            for e in ledger.audit(since.as_deref())? {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!(
                        "{}\t{}\tscan {} page {}\t{}\t{}\t{} -> {}\t{}",
                        e.at,
                        e.reviewer,
                        e.scan_id,
                        e.page,
                        e.action,
                        e.field.as_deref().unwrap_or("-"),
                        e.before.as_deref().unwrap_or("-"),
                        e.after.as_deref().unwrap_or("-"),
                        e.reason.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}

/// The ledger's error inside a stage's error that wraps it transparently
/// (and so hides it from the error's chain).
fn ledger_error<'e>(
    cause: &'e (dyn std::error::Error + 'static),
) -> Option<&'e todoke::ledger::LedgerError> {
    use todoke::{serve::ServeError, tally::TallyError, watch::WatchError};
    if let Some(l) = cause.downcast_ref() {
        return Some(l);
    }
    match (
        cause.downcast_ref::<WatchError>(),
        cause.downcast_ref::<ServeError>(),
        cause.downcast_ref::<TallyError>(),
    ) {
        (Some(WatchError::Ledger(l)), _, _)
        | (_, Some(ServeError::Ledger(l)), _)
        | (_, _, Some(TallyError::Ledger(l))) => Some(l),
        _ => None,
    }
}

fn load_settings(path: &std::path::Path) -> anyhow::Result<todoke::config::Config> {
    Ok(todoke::config::Config::load(path)?)
}
