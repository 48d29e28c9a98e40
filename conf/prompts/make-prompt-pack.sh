#!/usr/bin/env bash
# Makes ctid's default prompt packs for the spoken play_content types 1-6
# (docs/prompts.md): one 8 kHz mono 16-bit WAV per word the reading rules
# of src/speech.c use, synthesised with espeak-ng and cut with sox.
#
#   make-prompt-pack.sh OUT_DIR [LANG...]     LANG: zh, en (default: both)
#
# writes OUT_DIR/<lang>/<name>.wav. Output is deterministic (espeak-ng is,
# and sox runs with -R, no dither). To use professional recordings instead,
# record the same names (the lists below) and drop them in place.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [zh|en]..." >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1; shift
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(zh en)
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done

# name|what espeak-ng says|what a recording must say (for people)
# Mandarin goes through the pinyin voice: Debian's espeak-ng 1.51 "cmn"
# voice misreads isolated characters (四 as "si four"), while
# cmn-latn-pinyin reads tone-numbered pinyin cleanly.
zh_words() {
  cat <<'WORDS'
digit_0|ling2|零
digit_1|yi1|一
digit_2|er4|二
digit_3|san1|三
digit_4|si4|四
digit_5|wu3|五
digit_6|liu4|六
digit_7|qi1|七
digit_8|ba1|八
digit_9|jiu3|九
liang|liang3|两 (2 before a measure word or 百/千/万/亿)
yao|yao1|幺 (1 in a phone number, with the option yao=1)
star|xing1 hao4|星号 (*)
hash|jing3 hao4|井号 (#)
ten|shi2|十
hundred|bai3|百
thousand|qian1|千
ten_thousand|wan4|万
hundred_million|yi4|亿
point|dian3|点 (decimal point)
minus|fu4|负
yuan|yuan2|元
jiao|jiao3|角
fen|fen1|分 (money)
year|nian2|年
month|yue4|月
day|ri4|日
oclock|dian3|点 (hour of a time)
zheng|zheng3|整 (a whole hour: 两点整)
minute|fen1|分 (minute of a time)
second|miao3|秒
hours|xiao3 shi2|小时
minutes|fen1 zhong1|分钟
WORDS
}

en_words() {
  local n=(zero one two three four five six seven eight nine)
  local teen=(ten eleven twelve thirteen fourteen fifteen sixteen seventeen
              eighteen nineteen)
  local tens=("" "" twenty thirty forty fifty sixty seventy eighty ninety)
  local months=("" January February March April May June July August
                September October November December)
  local ord=("" first second third fourth fifth sixth seventh eighth ninth
             tenth eleventh twelfth thirteenth fourteenth fifteenth
             sixteenth seventeenth eighteenth nineteenth twentieth
             twenty-first twenty-second twenty-third twenty-fourth
             twenty-fifth twenty-sixth twenty-seventh twenty-eighth
             twenty-ninth thirtieth thirty-first)
  local i
  for i in {0..9}; do echo "digit_$i|${n[i]}|${n[i]}"; done
  for i in {0..9}; do echo "n_1$i|${teen[i]}|${teen[i]}"; done
  for i in {2..9}; do echo "n_${i}0|${tens[i]}|${tens[i]}"; done
  for i in {1..12}; do echo "month_$i|${months[i]}|${months[i]}"; done
  for i in {1..31}; do echo "ord_$i|${ord[i]}|${ord[i]} (day of a month)"; done
  cat <<'WORDS'
star|star|star (*)
hash|hash|hash (#)
hundred|hundred|hundred
thousand|thousand|thousand
million|million|million
billion|billion|billion
point|point|point (decimal)
minus|minus|minus
oh|oh|oh (as in nineteen oh five)
and|and|and
yuan|yuan|yuan (the currency unit)
cent|cent|cent
cents|cents|cents
oclock|o'clock|o'clock
hour|hour|hour
hours|hours|hours
minute|minute|minute
minutes|minutes|minutes
second|second|second
seconds|seconds|seconds
WORDS
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for lang in "${langs[@]}"; do
  case $lang in
    zh) voice=cmn-latn-pinyin ;;
    en) voice=en-us ;;
    *) usage ;;
  esac
  mkdir -p "$out/$lang"
  while IFS='|' read -r name say _; do
    espeak-ng -v "$voice" -s 150 -w "$tmp/raw.wav" "$say"
    # Trim silence at both ends so words join naturally, then leave 30 ms
    # so digits read one by one stay apart; same peak level for every word.
    sox -D -R "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$tmp/out.wav" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
        norm -3 pad 0 0.03
    mv "$tmp/out.wav" "$out/$lang/$name.wav"
  done < <("${lang}_words")
done
