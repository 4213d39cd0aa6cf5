# todoke: what staff read, in English. Must hold every id of i18n/ja.ftl
# (the tests in i18n::tests check). Reason codes themselves stay in
# records.jsonl, the "reason codes" column of mismatches.csv and the page's
# data-reason attributes.

## The review page (todoke review)

review-title = Open mismatches — todoke
review-heading = Open mismatches
review-count = showing { $shown } of { $total }
review-reviewer = Reviewer: { $name }
review-login = Your name (recorded with every decision):
review-login-button = Start
review-empty = Nothing needs checking.
filter-all = all
filter-branch = branch
filter-form = form
filter-reason = reason
filter-button = Filter
col-received = received
col-branch = branch
col-file = file
col-page = page
col-form = form
col-reasons = what needs checking
keys-list = Enter or o: open the first · on a card: 1–3 accept that candidate · c correct · x reject · n next · l list
card-list = list
card-position = { $n } of { $total } open
card-next = next
card-title = Review: { $file } page { $page }
card-page = page { $page }
card-fields = Fields to check
msg-reject-needs-reason = A rejection needs a reason.
msg-done-corrected = Correction saved.
msg-done-rejected = Rejection recorded.
msg-still-open = Still open. Please check:
hint-date = e.g. 2026-03-26
hint-single = option number
hint-multi = option numbers, comma-separated
hint-digits = digits
field-read = read: { $value }
field-confidence = confidence { $conf }
button-save = Save correction (Enter)
cand-heading = Register candidates (accept with keys 1–3)
cand-key = key
cand-atena = 宛名番号
cand-name = name
cand-birth = birthdate
cand-why = why offered
reject-label = Reject with reason:
reject-button = Reject
all-fields = all fields
keys-card = 1–3 accept that candidate (with the fields as shown) · c correct · Enter save · x reject · n next · l list
refused-token = Missing or wrong access token: open the address todoke review printed.
refused-csrf = Missing or wrong CSRF value: reload the page.
refused-name = Give your name on the list page first.
refused-method = Method not allowed.
refused-not-found = Not found.
refused-host = wrong Host: open the URL todoke review printed
refused-busy = the ledger is busy: try again in a moment
form-unknown = unknown form

## Reasons (.short for lists, .kind for the filter)

reason-low_confidence = The reader is not sure of "{ $field }". Compare it with the image and correct it if it differs.
    .short = { $field }: not sure
    .kind = not sure
reason-invalid = "{ $field }" was read as a value that cannot be (a date that does not exist, a number out of range). Type the right value from the image.
    .short = { $field }: impossible value
    .kind = impossible value
reason-check_digit = The check digit of "{ $field }" does not fit: some digit was misread or miswritten. Check it digit by digit against the image.
    .short = { $field }: check digit fails
    .kind = check digit fails
reason-multiple_marks = "{ $field }" takes one answer but several boxes are marked. Enter the answer meant from the image, or reject and ask the person.
    .short = { $field }: several marks
    .kind = several marks
reason-missing = "{ $field }" is blank or no mark was found. Enter it from the image if it is there; otherwise ask the person.
    .short = { $field }: blank
    .kind = blank
reason-inconsistent = "{ $field }" does not agree with the other dates (e.g. due date and weeks pregnant). Check against the image which one was misread.
    .short = { $field }: disagrees with other dates
    .kind = dates disagree
reason-after_receipt = "{ $field }" was read as a day later than the day its scan was taken in. Nobody writes a day still to come, so it is misread or miswritten: enter the right date from the image, or ask the person.
    .short = { $field }: after the day taken in
    .kind = date after intake
reason-register_not_found = Nobody in the resident register has the addressee number as read (the number did not match, so the birthdate was not compared). Compare the candidates with the image and correct the number, or reject if the person is not in the register.
    .short = not in the register (addressee number did not match)
    .kind = not in the register
reason-birthdate_mismatch = The addressee number matches a person in the register, but the birthdate does not. Compare the birthdate image (and its era mark) with the candidates and correct it.
    .short = number matches, birthdate differs
    .kind = birthdate differs
reason-duplicate_page = The same form of the same person is already validated from another file. Reject it if it arrived twice.
    .short = already validated from another file
    .kind = duplicate form
reason-read_error = Something went wrong while reading the page. Enter it by hand from the image, or tell IT.
    .short = reading failed
    .kind = reading failed
reason-blank_page = The page is blank. Reject it if a blank sheet was simply scanned along.
    .short = blank page
    .kind = blank page
reason-marks_not_found = The corner alignment marks were not found (edge cut off, folded, or another paper). Scan the original again.
    .short = alignment marks not found
    .kind = alignment marks
reason-invalid_scale = The page is not the form's size (a reduced copy or another paper). Scan it again at full size.
    .short = wrong paper size
    .kind = paper size
reason-unknown_form = Which form this is cannot be told (the form code at the top is unreadable). Check the form and scan it again.
    .short = form not recognised
    .kind = unknown form
reason-unreadable_file = The file could not be opened. Check the original in the inbox.
    .short = file cannot be opened
    .kind = file cannot be opened
reason-empty = The file is empty. Scan again.
    .short = empty file
    .kind = empty file
reason-unknown_format = The file is in a format todoke cannot read. Check the scanner's file format and scan again.
    .short = unreadable format
    .kind = unreadable format
reason-too_large = The image is too large to read. Scan again at a lower resolution (about 300 dpi).
    .short = image too large
    .kind = image too large
reason-corrupt = The file is damaged or cut short. Scan again.
    .short = damaged file
    .kind = damaged file
reason-too_many_pages = The file has too many pages. Scan it in several parts.
    .short = too many pages
    .kind = too many pages
reason-no_pages = The file has no pages. Scan again.
    .short = no pages
    .kind = no pages
reason-pdf_unavailable = PDF reading is not available on this server. Tell IT.
    .short = PDF cannot be read
    .kind = PDF cannot be read
reason-duplicate_file = A file with the same content has already arrived. It was sent twice; nothing to do.
    .short = same file already received
    .kind = duplicate file
reason-other = Needs checking (code { $code }). Ask IT what it means.

## Why a candidate is offered

why-as_read = exactly as read (addressee number and birthdate)
why-as_read_but_outside_eras = both keys as read, but the birthdate is outside the eras
why-as_read_but_cells_misfit = both keys as read, but the key cells do not fit the keys
why-as_read_but_weak_cell = both keys as read, but a key cell is only { $a } sure
why-as_read_but_rival = both keys as read, but another register row is a plausible reading (odds { $a })
why-atena_match_birth_differs = addressee number matches; birthdate differs
why-atena_match_era_off = addressee number matches; birthdate as if the era box were one off
why-cell_second_choice = cell { $a } read { $b }, its second choice { $c } matches
why-cell_would_be = cell { $a } read { $b } would be { $c }
why-cells_swapped = cells { $a } and { $b } swapped
why-birth_same_atena_same = same birthdate and addressee number as read
why-birth_same_atena_off = same birthdate, addressee number { $a } { $a ->
        [one] digit
       *[other] digits
    } off

## Statuses

status-validated = validated
status-mismatch = mismatch
status-skipped = skipped (side not read)
status-unreadable = unreadable
status-quarantined = quarantined file
field-status-ok = ok
field-status-low_confidence = not sure
field-status-invalid = impossible value
field-status-check_digit = check digit fails
field-status-multiple_marks = several marks
field-status-missing = blank
field-status-inconsistent = disagrees with other dates
field-status-after_receipt = later than the day taken in

## report.html

report-title = todoke batch { $id }
report-heading = todoke batch { $id }
report-quarantined = Quarantined files (could not be read)
report-needs-staff = Pages that need staff ({ $n })
report-detail = Detail (for IT): { $detail }
page-image-caption = What registration saw on this page: blue = where each corner mark was searched, green = marks found and the form code read, red = marks not found or a code that names no form, purple = placed from the other marks. Numbers: offset in mm from where the other three marks put each one.
report-candidates = Register candidates:

## mismatches.csv headers

csv-source = source
csv-page = page
csv-branch = branch
csv-form = form
csv-status = status
csv-reasons = what needs checking
csv-reason-codes = reason codes
csv-values = values
csv-candidate = candidate_{ $n }

## Summary lines of the commands

summary-batch = validated: { $validated }  mismatch: { $mismatch }  skipped: { $skipped }  unreadable: { $unreadable }  quarantined files: { $quarantined }
summary-run = files: { $files }  pages: { $pages }  quarantined files: { $quarantined }  time: { $seconds } s  pages/s: { $rate }  peak memory: { $memory }
summary-unknown = n/a
tally-summary = period: { $from } to { $to }  pages counted: { $pages }  not yet counted (open mismatches): { $open }
tally-empty =   (no records in this period)
summary-synth = { $pages } pages in { $files } files ({ $read } read sides, { $turned } upside down, { $mismatches } deliberate mismatches), register of { $rows } rows: { $out }
progress-run = reading
progress-files = files
progress-pages = pages
progress-left = left
progress-synth = writing

## todoke status

st-scans = scans by state:
st-none = (none yet)
st-state-received = received
st-state-read = read
st-state-quarantined = quarantined
st-state-in_batch = in_batch
st-state-mismatch = mismatch
st-branches = branches (waiting in inbox / taken, not read / read, not batched):
st-unhealthy-mount = UNHEALTHY: share not mounted (the inbox is not a mount point)
st-unhealthy-missing = UNHEALTHY: inbox missing or unreadable
st-unhealthy-refused = { $waiting } UNHEALTHY: { $count } never read (not a regular file: { $files })
st-unhealthy-disk = output: UNHEALTHY: disk full ({ $mb } MB free on { $dir }); work is paused until there is room
st-last-batch = last batch: { $id } ({ $state }, { $scans } scans{ $closed })
st-closed = , closed { $at }
st-last-batch-none = last batch: none
st-batch-closing = closing
st-batch-published = published
st-heartbeat = daemon heartbeat: { $at }
st-never = never
st-template-newer = newer template shipped: { $form } (shipped version { $shipped }, yours { $yours }); yours was not overwritten: compare { $shipped_path } with { $yours_path } and update yours by hand to adopt it

## the ledger (todoke.db)

ledger-newer-schema = the ledger { $path } was written by a newer todoke (its schema version { $found }; this todoke knows up to { $known }). It was left untouched: install the newer todoke again, or restore the ledger from its backup

## todoke explain (explain.txt and the line it prints; for IT and template authors)

ex-title = todoke explain — { $file } page { $page }
ex-sha = file sha256: { $sha }
ex-outcome = outcome: { $status }
ex-reasons = why staff must look:
ex-no-page = this file has no page { $page } (it has { $pages }).
ex-file-failed = the file as a whole could not be read (it is quarantined): { $reason }
ex-failed-at = stopped at stage: { $stage }.
ex-error = error: { $code } — { $message }
ex-evidence = evidence: { $evidence }
ex-stage-decode = 1. decode
ex-stage-register = 2. register
ex-stage-read = 3. read
ex-stage-validate = 4. validate
ex-stage-match = 5. match against the register
ex-decoded = { $width }×{ $height } px, about { $dpi } dpi ({ $source })
ex-dpi-marks = from the spacing of the registration marks
ex-dpi-size = from the image size and the paper size
ex-levels = paper grey { $paper }, ink grey { $ink }, ink below { $threshold }
ex-blank = no ink at all (blank page).
ex-attempt = tried the geometry of form { $form } (scale guessed from the image size: { $ppm } px/mm):
ex-mark-found = { $corner }: found at ({ $x }, { $y }) px; { $residual } mm from where the other three marks put it
ex-mark-found-three = { $corner }: found at ({ $x }, { $y }) px (with one mark hidden, the others cannot be checked against each other)
ex-mark-covered = { $corner }: not found; placed at ({ $x }, { $y }) px from the other three; visible ink outside it: { $residual }
ex-mark-missing = { $corner }: not found in the searched square ({ $x0 }, { $y0 })–({ $x1 }, { $y1 }) px
ex-residual-none = none (no ink visible)
ex-scale = scale from the marks { $scale } (0.85 to 1.15 accepted)
ex-idcode = id code ({ $way }): { $bits } → { $code }
ex-idcode-none = not a form code
ex-way-upright = upright
ex-way-turned = upside down
ex-registered = form "{ $title }" ({ $form }), side { $side }, { $way }, { $ppm } px/mm
ex-side-not-read = this side is not read (skipped).
ex-covered = the { $corner } mark was hidden: placed from the other three and the id code.
ex-bilevel = black-and-white scan: { $yes }
ex-yes = yes
ex-no = no
ex-field = "{ $label }" ({ $id }): value { $value }, confidence { $conf } (threshold { $threshold }), { $status }
ex-cells = cells (reading confidence): { $cells }
ex-box = box "{ $label }": { $state } (confidence { $conf }), ink { $ink }, faint { $faint }, enclosure { $enclosure }{ $unjudgeable }
ex-box-unjudgeable = , paper and border indistinguishable: cannot be judged
ex-state-empty = empty
ex-state-marked = marked
ex-state-uncertain = uncertain
ex-rule-vouch = "{ $field }" ({ $kind }): rival readings searched under the rules of { $fields }; their summed odds { $rivals } (limit { $limit }) → { $decision }
ex-rule-kind-doubtful = read with doubt
ex-rule-kind-checked = has a check digit
ex-rule-passed = the rules vouch: passed
ex-rule-held = the rules cannot vouch: stays doubtful
ex-rule-not_searchable = cannot be searched (the era is not sure, or a field is missing)
ex-rule-no_rules = no rule can catch a misread here (no check digit, range, date or relation): cannot vouch
ex-rules-none = no field was vouched for by the rules.
ex-received = taken in on { $day }: no notification, check-up or birth date may be later.
ex-relation = dates do not agree: { $earlier } → { $later }{ $weeks } ({ $lo } to { $hi } days)
ex-relation-weeks = { " " }plus the weeks of { $weeks }
ex-match-matched = matches register row { $row } (addressee number and birthdate)
ex-match-not-found = nobody in the register has the addressee number read
ex-match-birth = addressee number matches row { $row }, the birthdate does not
ex-match-not-attempted = not attempted: the addressee number or birthdate was not read surely
ex-vouch-not-asked = register vouching: not asked ({ $why })
ex-vouch-why-no_vouch_cell_floor = the template sets no vouch_cell_floor
ex-vouch-why-keys_not_usable = the addressee number or birthdate breaks its rules
ex-vouch-why-era_tick_unsure = the era tick is not sure
ex-vouch = register vouching: { $outcome }. row { $row }, weakest key cell { $weakest } (floor { $floor }), summed odds of every other row { $rivals } (limit { $max })
ex-vouch-vouched = vouched (taken as a match)
ex-vouch-doubtful = cannot vouch
ex-vouch-no_row = no row holds the keys as read
ex-candidates = candidates:
ex-candidate = { $n }. addressee number { $atena }, birthdate { $birth }, { $why }
ex-register-rows = register used: { $rows } rows
ex-images = images:
ex-legend = legend: green = sure, orange = doubtful, red = failed or not found, blue = where it was searched, purple = placed from the other marks. Above each digit box the digit read (My Number: * except the last four), below it the confidence. Beside each checkbox its ink share; a thick frame is "marked".
ex-img-decoded = 1-decoded.png: the page as decoded (grey)
ex-img-registered = 2-registered.png: registration marks and id code (searched, found, offset in mm; the arrow points to the form's top)
ex-img-read = 3-read.png: where each digit box and checkbox was read, and how
ex-printed = page { $page }: { $status }{ $reasons } → { $dir }
ex-printed-file = whole file: { $reason } → { $dir }
ex-corner-top-left = top left
ex-corner-top-right = top right
ex-corner-bottom-left = bottom left
ex-corner-bottom-right = bottom right
