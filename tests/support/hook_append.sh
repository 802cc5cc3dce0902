#!/bin/sh
# Test exec hook for tests/fault_campaign.rs: appends the event it was given on stdin (one JSON
# document) as one line to the file "$1", so repeated deliveries can be counted, and exits 0.
# The event is only ever read and written as data: nothing in it is evaluated.
event=$(cat)
printf '%s\n' "$event" >> "$1"
echo appended
