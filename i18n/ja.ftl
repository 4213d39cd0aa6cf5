# todoke: 職員が読む文言（日本語）。i18n/en.ftl と同じ id をすべて持つこと
# （テスト i18n::tests が確かめます）。理由コードそのものは records.jsonl と
# mismatches.csv の「理由コード」列、ページの data-reason 属性に残ります。

## 確認ページ（todoke review）

review-title = 要確認の書類 — todoke
review-heading = 要確認の書類
review-count = { $total }件中 { $shown }件を表示
review-reviewer = 確認者: { $name }
review-login = お名前（判断ごとに記録されます）:
review-login-button = 開始
review-empty = 確認が必要な書類はありません。
filter-all = すべて
filter-branch = 支所
filter-form = 様式
filter-reason = 理由
filter-button = 絞り込む
col-received = 受付日時
col-branch = 支所
col-file = ファイル
col-page = ページ
col-form = 様式
col-reasons = 確認が必要な理由
keys-list = Enter または o: 先頭を開く · 書類の画面で: 1〜3 その候補を採用 · c 修正 · x 却下 · n 次へ · l 一覧
card-list = 一覧へ
card-position = 未処理 { $total }件中 { $n }件目
card-next = 次へ
card-title = 確認: { $file } { $page }ページ
card-page = { $page }ページ
card-fields = 確認する項目
msg-reject-needs-reason = 却下するには理由を入力してください。
msg-done-corrected = 修正を保存しました。
msg-done-rejected = 却下を記録しました。
msg-still-open = まだ確定できません。次の点を確かめてください:
hint-date = 例: 2026-03-26
hint-single = 選択肢の番号
hint-multi = 選択肢の番号（複数はカンマ区切り）
hint-digits = 数字
field-read = 読み取り: { $value }
field-confidence = 確からしさ { $conf }
button-save = 修正を保存（Enter）
cand-heading = 住民記録の候補（1〜3 のキーで採用）
cand-key = キー
cand-atena = 宛名番号
cand-name = 氏名
cand-birth = 生年月日
cand-why = 候補に挙げた理由
reject-label = 却下の理由:
reject-button = 却下
all-fields = すべての項目
keys-card = 1〜3 その候補を採用（ほかの項目は表示のまま） · c 修正 · Enter 保存 · x 却下 · n 次へ · l 一覧
refused-token = アクセス用の鍵がないか、違います。todoke review が表示したアドレスを開いてください。
refused-csrf = ページの確認用の値がないか、違います。ページを読み込み直してください。
refused-name = 先に一覧のページでお名前を入力してください。
refused-method = この操作はできません。
refused-not-found = ページが見つかりません。
refused-host = このアドレスでは開けません。todoke review が表示したアドレスを開いてください。
refused-busy = 台帳が一時的に使用中です。少し待ってから、もう一度お試しください。
form-unknown = 様式不明

## 理由（.short は一覧用、.kind は絞り込み用）

reason-low_confidence = 「{ $field }」の読み取りに自信がありません。画像と見比べて確認し、違っていれば直してください。
    .short = { $field }: 読み取りに自信なし
    .kind = 読み取りに自信なし
reason-invalid = 「{ $field }」の読み取った値がありえない値です（存在しない日付、範囲外の数など）。画像を見て正しい値を入力してください。
    .short = { $field }: ありえない値
    .kind = ありえない値
reason-check_digit = 「{ $field }」の検査用の数字（チェックデジット）が合いません。どこかの桁の読み違いか書き違いです。画像を見て1桁ずつ確かめてください。
    .short = { $field }: チェックデジット不一致
    .kind = チェックデジット不一致
reason-multiple_marks = 「{ $field }」は1つだけ選ぶ質問ですが、複数に印があります。画像を見て本人の答えを入力し、判断できなければ却下して本人に確認してください。
    .short = { $field }: 複数に印
    .kind = 複数に印
reason-missing = 「{ $field }」が未記入か、印が見つかりません。画像を見て、記入があれば入力し、なければ本人に確認してください。
    .short = { $field }: 未記入
    .kind = 未記入
reason-inconsistent = 「{ $field }」がほかの日付と合いません（出産予定日と妊娠週数など）。画像を見て、どちらの読み違いかを確かめてください。
    .short = { $field }: ほかの日付と矛盾
    .kind = 日付の矛盾
reason-after_receipt = 「{ $field }」が、この書類のスキャンを取り込んだ日より後の日付に読めました。まだ来ていない日は書けないので、読み違いか書き違いです。画像を見て正しい日付を入力するか、本人に確認してください。
    .short = { $field }: 取り込み日より後の日付
    .kind = 取り込み日より後
reason-register_not_found = 読み取った宛名番号の人が住民記録にいません（宛名番号が一致しないため、生年月日は照合していません）。候補と画像を見比べて宛名番号を直すか、記録にない人なら却下してください。
    .short = 住民記録に該当なし（宛名番号が不一致）
    .kind = 住民記録に該当なし
reason-birthdate_mismatch = 宛名番号は住民記録の人と一致しましたが、生年月日が一致しません。生年月日の画像（元号の印も）と候補を見比べて直してください。
    .short = 宛名番号は一致、生年月日が不一致
    .kind = 生年月日が不一致
reason-duplicate_page = 同じ人の同じ様式が、別のファイルですでに確定しています。二重に届いた書類なら却下してください。
    .short = 同じ書類がすでに確定済み
    .kind = 二重の書類
reason-read_error = ページの読み取り中に問題が起きました。画像を見て手で入力するか、システム担当に連絡してください。
    .short = 読み取り中の問題
    .kind = 読み取り中の問題
reason-blank_page = 白紙のページです。白紙が混ざっただけなら却下してください。
    .short = 白紙
    .kind = 白紙
reason-marks_not_found = 用紙の四隅にある位置合わせの印が見つかりません（紙の端が切れた、折れた、別の用紙など）。原本をスキャンし直してください。
    .short = 位置合わせの印が見つからない
    .kind = 位置合わせの印なし
reason-invalid_scale = 用紙の大きさが合いません（縮小コピーや別の用紙）。原寸でスキャンし直してください。
    .short = 用紙の大きさが違う
    .kind = 用紙の大きさ
reason-unknown_form = どの様式か判別できません（用紙上部の様式コードが読めません）。様式を確かめ、スキャンし直してください。
    .short = 様式が判別できない
    .kind = 様式不明
reason-unreadable_file = ファイルを開けませんでした。受信箱の元のファイルを確かめてください。
    .short = ファイルを開けない
    .kind = ファイルを開けない
reason-empty = 中身が空のファイルです。スキャンし直してください。
    .short = 空のファイル
    .kind = 空のファイル
reason-unknown_format = 読めない形式のファイルです。スキャナーの保存形式を確かめ、スキャンし直してください。
    .short = 読めない形式
    .kind = 読めない形式
reason-too_large = 画像が大きすぎて読めません。解像度を下げて（300程度）スキャンし直してください。
    .short = 画像が大きすぎる
    .kind = 画像が大きすぎる
reason-corrupt = ファイルが壊れているか、途中で切れています。スキャンし直してください。
    .short = ファイルが壊れている
    .kind = ファイルの破損
reason-too_many_pages = ページ数が多すぎます。いくつかに分けてスキャンしてください。
    .short = ページ数が多すぎる
    .kind = ページ数が多すぎる
reason-no_pages = ページのないファイルです。スキャンし直してください。
    .short = ページがない
    .kind = ページがない
reason-pdf_unavailable = このサーバーではPDFを読む部品が使えません。システム担当に連絡してください。
    .short = PDFを読めない
    .kind = PDFを読めない
reason-duplicate_file = 同じ内容のファイルがすでに届いています。二重に送られたもので、処理は要りません。
    .short = 同じファイルが届き済み
    .kind = 二重のファイル
reason-other = 確認が必要です（コード { $code }）。意味はシステム担当に確認してください。

## 候補に挙げた理由

why-as_read = 読み取りどおりの人（宛名番号・生年月日とも一致）
why-as_read_but_outside_eras = 宛名番号・生年月日とも読み取りどおりですが、生年月日が昭和〜令和の外です
why-as_read_but_cells_misfit = 宛名番号・生年月日とも読み取りどおりですが、桁の数が合いません
why-as_read_but_weak_cell = 宛名番号・生年月日とも読み取りどおりですが、確からしさ { $a } の桁があります
why-as_read_but_rival = 宛名番号・生年月日とも読み取りどおりですが、別の人の読み違いである可能性も残ります
why-atena_match_birth_differs = 宛名番号が一致、生年月日が違う
why-atena_match_era_off = 宛名番号が一致、生年月日は元号の印が1つずれた場合と一致
why-cell_second_choice = { $a }桁目を{ $b }と読みましたが、第2候補の{ $c }なら一致
why-cell_would_be = { $a }桁目の{ $b }が{ $c }なら一致
why-cells_swapped = { $a }桁目と{ $b }桁目が入れ替わっている
why-birth_same_atena_same = 生年月日と宛名番号が読み取りと同じ
why-birth_same_atena_off = 生年月日が同じで、宛名番号が{ $a }桁違う

## 状態

status-validated = 確定
status-mismatch = 要確認
status-skipped = 対象外（読まない面）
status-unreadable = 読み取れない
status-quarantined = 隔離したファイル
field-status-ok = 問題なし
field-status-low_confidence = 読み取りに自信なし
field-status-invalid = ありえない値
field-status-check_digit = チェックデジット不一致
field-status-multiple_marks = 複数に印
field-status-missing = 未記入
field-status-inconsistent = ほかの日付と矛盾
field-status-after_receipt = 取り込み日より後の日付

## report.html

report-title = バッチ { $id } — todoke
report-heading = バッチ { $id } の結果
report-quarantined = 隔離したファイル（読み取れなかったファイル）
report-needs-staff = 職員の確認が必要なページ（{ $n }件）
report-detail = 詳細（システム担当向け）: { $detail }
page-image-caption = このページで位置合わせが見たもの: 青 = 四隅の印を探した範囲、緑 = 見つけた印と読めた様式コード、赤 = 見つからない印・様式にならないコード、紫 = ほかの印から置いた位置。数字はほかの3つの印が示す位置とのずれ（ミリ）。
report-candidates = 住民記録の候補:

## mismatches.csv の見出し

csv-source = ファイル
csv-page = ページ
csv-branch = 支所
csv-form = 様式
csv-status = 状態
csv-reasons = 確認が必要な理由
csv-reason-codes = 理由コード
csv-values = 読み取った値
csv-candidate = 候補{ $n }

## コマンドが表示する集計

summary-batch = 確定: { $validated }  要確認: { $mismatch }  対象外: { $skipped }  読み取れない: { $unreadable }  隔離したファイル: { $quarantined }
summary-run = ファイル: { $files }  ページ: { $pages }  隔離したファイル: { $quarantined }  時間: { $seconds }秒  毎秒 { $rate }ページ  最大メモリ: { $memory }
summary-unknown = 不明
tally-summary = 集計期間: { $from }〜{ $to }  集計したページ: { $pages }  未集計（要確認のまま）: { $open }
tally-empty =   （この期間の記録はありません）
summary-synth = { $files }ファイル { $pages }ページ（読む面 { $read }、上下逆 { $turned }、わざと不一致 { $mismatches }）、住民記録 { $rows }行: { $out }
progress-run = 読み取り中
progress-files = ファイル
progress-pages = ページ
progress-left = 残り
progress-synth = 作成中

## todoke status

st-scans = 状態ごとのスキャン:
st-none = （まだありません）
st-state-received = 受付済み
st-state-read = 読み取り済み
st-state-quarantined = 隔離
st-state-in_batch = バッチに出力済み
st-state-mismatch = 要確認
st-branches = 支所（受信箱で待機 / 取り込み済み・未読 / 読み取り済み・未出力）:
st-unhealthy-mount = 異常: 共有フォルダーがつながっていません（マウントされていません）
st-unhealthy-missing = 異常: 受信箱がないか、読めません
st-unhealthy-refused = { $waiting } 異常: 通常のファイルでないもの { $count }件は読みません（{ $files }）。リンクなどを受信箱から取り除いてください
st-unhealthy-disk = 出力先: 異常: ディスクの空きが足りません（{ $dir } の空き { $mb } MB）。空きができるまで処理を止めています。IT担当に連絡してください
st-last-batch = 最新のバッチ: { $id }（{ $state }、スキャン { $scans }件{ $closed }）
st-closed = 、{ $at } に確定
st-last-batch-none = 最新のバッチ: なし
st-batch-closing = 出力中
st-batch-published = 出力済み
st-heartbeat = デーモンの最終応答: { $at }
st-never = なし
st-template-newer = 新しい様式定義が同梱されています: { $form }（同梱 版{ $shipped }、使用中 版{ $yours }）。使用中のものは上書きしていません。{ $shipped_path } と { $yours_path } を見比べ、取り入れる場合はIT担当が使用中のものを更新してください

## 台帳（todoke.db）

ledger-newer-schema = 台帳 { $path } は新しい版の todoke で書かれています（台帳の版 { $found }、この todoke が扱えるのは版 { $known } まで）。台帳には手を加えていません。新しい版の todoke を入れ直すか、台帳をバックアップから戻してください

## todoke explain（explain.txt と表示する1行。システム担当・様式を作る人向け）

ex-title = todoke explain — { $file } { $page }ページ
ex-sha = ファイルの sha256: { $sha }
ex-outcome = 結果: { $status }
ex-reasons = 確認が必要な理由:
ex-no-page = このファイルに { $page }ページ目はありません（{ $pages }ページのファイルです）。
ex-file-failed = ファイル全体を読めませんでした（隔離されます）: { $reason }
ex-failed-at = { $stage }の段階で止まりました。
ex-error = エラー: { $code } — { $message }
ex-evidence = 証拠: { $evidence }
ex-stage-decode = 1. 画像の読み込み
ex-stage-register = 2. 位置合わせ
ex-stage-read = 3. 読み取り
ex-stage-validate = 4. 値の検査
ex-stage-match = 5. 住民記録との照合
ex-decoded = { $width }×{ $height } ピクセル、約 { $dpi } dpi（{ $source }）
ex-dpi-marks = 位置合わせマークの間隔から
ex-dpi-size = 画像の大きさと用紙の大きさから
ex-levels = 紙の明るさ { $paper }、インクの明るさ { $ink }、これより暗ければインク: { $threshold }
ex-blank = インクがありません（白紙）。
ex-attempt = 様式 { $form } の配置で試しました（画像の大きさからの推定 { $ppm } ピクセル/mm）:
ex-mark-found = { $corner }: 見つかりました（{ $x }, { $y } ピクセル）。ほかの3つのマークが示す位置とのずれ { $residual } mm
ex-mark-found-three = { $corner }: 見つかりました（{ $x }, { $y } ピクセル）。1つ隠れているため、ずれは確かめられません
ex-mark-covered = { $corner }: 見つかりません。ほかの3つのマークから（{ $x }, { $y } ピクセル）に置きました。見えているインクのはみ出し { $residual }
ex-mark-missing = { $corner }: 探した範囲（{ $x0 }, { $y0 }）〜（{ $x1 }, { $y1 }）ピクセルに見つかりません
ex-residual-none = なし（見えるインクがない）
ex-scale = マークから求めた倍率 { $scale }（0.85〜1.15 なら受け付けます）
ex-idcode = 識別コード（{ $way }）: { $bits } → { $code }
ex-idcode-none = 様式コードにならない
ex-way-upright = 正立
ex-way-turned = 上下逆
ex-registered = 様式「{ $title }」（{ $form }）、面 { $side }、向き: { $way }、{ $ppm } ピクセル/mm
ex-side-not-read = この面は読まない面です（対象外）。
ex-covered = { $corner }のマークは隠れていたため、ほかの3つと識別コードで位置を合わせました。
ex-bilevel = 白黒（2値）のスキャン: { $yes }
ex-yes = はい
ex-no = いいえ
ex-field = 「{ $label }」（{ $id }）: 値 { $value }、確からしさ { $conf }（基準 { $threshold }）、{ $status }
ex-cells = 各桁（読み取り 確からしさ）: { $cells }
ex-box = □「{ $label }」: { $state }（確からしさ { $conf }）、濃いインク { $ink }、薄いインク { $faint }、囲み { $enclosure }{ $unjudgeable }
ex-box-unjudgeable = 、紙と枠の明るさが区別できず判断できません
ex-state-empty = 空
ex-state-marked = 印あり
ex-state-uncertain = 不確か
ex-rule-vouch = 「{ $field }」（{ $kind }）: { $fields } の規則で読み違いの候補を探しました。候補の合計オッズ { $rivals }（上限 { $limit }）→ { $decision }
ex-rule-kind-doubtful = 自信なしの項目
ex-rule-kind-checked = チェックデジットのある項目
ex-rule-passed = 規則が保証するので合格
ex-rule-held = 保証できないので自信なしのまま
ex-rule-not_searchable = 探せません（元号が確かでない、項目がないなど）
ex-rule-no_rules = 読み違いを見つける規則がない（チェックデジット・範囲・日付・関係のどれもない）ので保証できません
ex-rules-none = 規則による保証は行いませんでした。
ex-received = 取り込み日 { $day }：届出日・受診日・生年月日はこの日より後にはなりえないものとして扱いました。
ex-relation = 日付の関係が成り立ちません: { $earlier } → { $later }{ $weeks }（{ $lo }〜{ $hi } 日）
ex-relation-weeks = ＋{ $weeks }の週数
ex-match-matched = 住民記録の { $row } 行目と一致（宛名番号・生年月日とも）
ex-match-not-found = 読み取った宛名番号の人は住民記録にいません
ex-match-birth = 宛名番号は { $row } 行目と一致、生年月日が不一致
ex-match-not-attempted = 宛名番号か生年月日が確かでないため、照合していません
ex-vouch-not-asked = 住民記録による保証: 行いません（{ $why }）
ex-vouch-why-no_vouch_cell_floor = 様式に vouch_cell_floor がありません
ex-vouch-why-keys_not_usable = 宛名番号か生年月日が規則を満たしていません
ex-vouch-why-era_tick_unsure = 元号の印が確かではありません
ex-vouch = 住民記録による保証: { $outcome }。行 { $row }、いちばん弱い桁の確からしさ { $weakest }（下限 { $floor }）、ほかの行の合計オッズ { $rivals }（上限 { $max }）
ex-vouch-vouched = 保証された（一致として扱います）
ex-vouch-doubtful = 保証できない
ex-vouch-no_row = 読み取りどおりの行がない
ex-candidates = 候補:
ex-candidate = { $n }. 宛名番号 { $atena }、生年月日 { $birth }、{ $why }
ex-register-rows = 照合に使った住民記録: { $rows }行
ex-images = 画像:
ex-legend = 凡例: 緑 = 確か、橙 = 疑わしい、赤 = 失敗・見つからない、青 = 探した範囲、紫 = ほかのマークから置いた位置。桁の上は読み取った数字（個人番号は下4桁以外 *）、下は確からしさ。チェック欄の横の % は濃いインクの割合、太枠は「印あり」。
ex-img-decoded = 1-decoded.png: 読み込んだままの画像（グレー）
ex-img-registered = 2-registered.png: 位置合わせマークと識別コード（探した範囲、見つけた位置、ずれ mm、矢印は用紙の上）
ex-img-read = 3-read.png: 各桁と各チェック欄を見た位置と結果
ex-printed = { $page }ページ: { $status }{ $reasons } → { $dir }
ex-printed-file = ファイル全体: { $reason } → { $dir }
ex-corner-top-left = 左上
ex-corner-top-right = 右上
ex-corner-bottom-left = 左下
ex-corner-bottom-right = 右下
