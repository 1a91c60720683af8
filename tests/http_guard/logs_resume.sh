#!/usr/bin/env bash
# A worker log follow resumes without loss: each line's event carries as its id the log offset
# after the line, and a follow sent with Last-Event-ID gets exactly the lines written since,
# none twice, whatever its tail. A Last-Event-ID that is not an offset is refused with the
# reason; one beyond the log (truncated or replaced) follows the log from its start after an
# `event: warning`. A follow without Last-Event-ID shows the same lines as before.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/http_guard/guard_lib.sh"

# A running worker for the follow: the hive re-adopts a live process from its registry.
adopt_worker w-res # sets W_PID
LOG="$RBEE_HOME/logs/w-res.log"
printf 'a1\na2\na3\n' >"$LOG"
start_hive
assert_eq "$(curl -s "$HIVE_URL/v1/workers" | jq -r '.workers[0].state')" ready "the worker is adopted"

# follow [LAST_ID] [TAIL] [APPEND] [N]: open a follow (with Last-Event-ID when LAST_ID is not
# "-"), append the text APPEND to the log once the stream answered, read until N line events
# came (then 0.5 s more, to see that no other line follows), and print one line per event:
# "warning <data>" / "<id> <data>" (or "<id> len=<bytes>" for a long one), then "last <id>" (the last id the stream carried).
follow() {
	raw "$HIVE_PORT" "
import re
last_id, tail, append, want = '$1', '${2:-0}', '''${3:-}''', int('${4:-0}')
s = conn(timeout=5)
hdr = '' if last_id == '-' else 'Last-Event-ID: %s\r\n' % last_id
s.sendall(('GET /v1/workers/w-res/logs?follow=1&tail=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n'
           % (tail, hdr)).encode())
buf = b''
while b'\r\n\r\n' not in buf:
    buf += s.recv(65536)
head, buf = buf.split(b'\r\n\r\n', 1)
status = head.split(b'\r\n')[0].decode()
if ' 200 ' not in status:
    m = re.search(rb'(?i)content-length: *([0-9]+)', head)
    while m and len(buf) < int(m.group(1)):
        buf += s.recv(65536)
    print(status)
    print(buf.decode(errors='replace'))
    sys.exit(0)
if append:
    with open('$LOG', 'a') as f:
        f.write(append)
events, last, lines, deadline = [], None, 0, None
def parse(block):
    global last
    ev = {'id': None, 'event': 'message', 'data': []}
    for l in block.split('\n'):
        if l.startswith(':') or not l:
            continue
        k, _, v = l.partition(':')
        v = v[1:] if v.startswith(' ') else v
        if k == 'data':
            ev['data'].append(v)
        elif k in ('id', 'event'):
            ev[k] = v
    if ev['id'] is not None:
        last = ev['id']
    return ev
raw_body, text = buf, ''
def dechunk():
    # the stream is chunked (HTTP/1.1, no length): move whole chunks from raw_body to text
    global raw_body, text
    while b'\r\n' in raw_body:
        size_line, rest = raw_body.split(b'\r\n', 1)
        n = int(size_line, 16)
        if len(rest) < n + 2:
            return
        text += rest[:n].decode()
        raw_body = rest[n + 2:]
while True:
    dechunk()
    while '\n\n' in text:
        block, text = text.split('\n\n', 1)
        ev = parse(block)
        if ev['data']:
            events.append(ev)
            if ev['event'] == 'message':
                lines += 1
    if lines >= want and deadline is None:
        deadline = time.time() + 0.5
    if deadline is not None and time.time() > deadline:
        break
    s.settimeout(0.5 if deadline is not None else 5)
    try:
        d = s.recv(65536)
    except socket.timeout:
        if deadline is not None:
            break
        print('timed out after %d of %d lines' % (lines, want))
        break
    if not d:
        break
    raw_body += d
for ev in events:
    d = '|'.join(ev['data'])
    print('%s %s' % ('warning' if ev['event'] == 'warning' else ev['id'],
                     d if len(d) <= 300 else 'len=%d' % len(d)))
print('last %s' % last)
s.close()"
}
off() { stat -c %s "$LOG"; }

# 1. A follow without Last-Event-ID: the tail, then new lines, each with its offset as id.
size0=$(off)
out=$(follow - 2 $'b1\nb2\n' 4)
assert_eq "$out" "$(printf '6 a2\n9 a3\n%s b1\n%s b2\nlast %s' $((size0 + 3)) $((size0 + 6)) $((size0 + 6)))" \
	"a follow shows the tail and new lines, each with the log offset after it as its id"
last=$(off)

# 2. While no one follows, lines are written; a follow resuming from the last id gets exactly
#    those (its tail of 50 is not used), none seen before, and nothing else.
printf 'c1\nc2\nc3\n' >>"$LOG"
out=$(follow "$last" 50 '' 3)
assert_eq "$out" "$(printf '%s c1\n%s c2\n%s c3\nlast %s' $((last + 3)) $((last + 6)) $((last + 9)) $((last + 9)))" \
	"Last-Event-ID resumes with exactly the lines written since, none twice"

# 3. A follow cut off before any line still knows where it stood: the stream opens with an
#    id-only event for its start, so resuming from it loses nothing.
out=$(follow - 0 '' 0)
assert_eq "$out" "last $(off)" "a follow with tail=0 starts by saying where it stands (id = log size)"
start=$(off)
printf 'd1\n' >>"$LOG"
out=$(follow "$start" 0 '' 1)
assert_eq "$out" "$(printf '%s d1\nlast %s' $((start + 3)) $((start + 3)))" \
	"resuming from that start id gets the line written after it"
out=$(follow 0 0 '' 9)
assert_eq "$(grep -c '^[0-9]' <<<"$out")" 9 "Last-Event-ID 0 gets the whole log"

# 4. Ids that are not an offset are refused, with the reason.
for bad in abc -5 12x 1.5 99999999999999999999999 9223372036854775808 0x10; do
	out=$(follow "$bad" 0 '' 0)
	assert_contains "$out" "400" "Last-Event-ID '$bad' is refused with 400"
	assert_contains "$out" "invalid Last-Event-ID" "and says the Last-Event-ID is invalid"
	assert_contains "$out" "byte offset" "and what an id is"
done
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers /health after the refusals"
assert_eq "$(curl -s -H 'Last-Event-ID: abc' "$HIVE_URL/v1/workers/w-res/logs?tail=1")" d1 \
	"a plain tail (no follow) does not look at Last-Event-ID"

# 5. The log is truncated while no one follows: an id beyond it follows the new log from its
#    start, after a warning that says so.
size=$(off)
printf 'e1\n' >"$LOG"
out=$(follow "$size" 0 $'e2\n' 2)
assert_eq "$(sed -n 1p <<<"$out")" \
	"warning the log of worker 'w-res' is shorter (3 bytes) than Last-Event-ID $size: it was truncated or replaced; following it from its start" \
	"an id beyond the log gets a warning that it was truncated or replaced"
assert_eq "$(sed -n '2,$p' <<<"$out")" "$(printf '3 e1\n6 e2\nlast 6')" "then the log from its start"

# 6. A line longer than 64 KiB goes out in pieces, each with the offset after it: resuming
#    after the first piece gets the rest of the line, nothing of it twice.
start=$(off)
python3 -c 'import sys; open(sys.argv[1], "a").write("p" * 150000 + "\n")' "$LOG"
out=$(follow "$start" 0 '' 3)
assert_eq "$out" "$(printf '%s len=65536\n%s len=65536\n%s len=18928\nlast %s' $((start + 65536)) \
	$((start + 131072)) $((start + 150001)) $((start + 150001)))" "a long line's pieces have the offsets after them as ids"
out=$(follow $((start + 65536)) 0 '' 2)
assert_eq "$out" "$(printf '%s len=65536\n%s len=18928\nlast %s' $((start + 131072)) $((start + 150001)) \
	$((start + 150001)))" "resuming after a piece gets the rest of the line"
assert_eq "$(curl -s "$HIVE_URL/health")" ok "the hive still answers /health"
pass
