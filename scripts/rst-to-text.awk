# reST sources (e.g. the Python documentation's _sources/*.rst.txt) → plain prose, one document per input file per
# output line (the "nvidia" input format of `bert prepare`). Drops literal blocks (after a paragraph ending in `::`
# or a code directive, until the next unindented line), directives, comments, field lists, doctest lines, heading
# underlines and tables; keeps the text of inline markup (:role:`text`, ``code``, *emph*).
FNR == 1 && NR > 1 { flush() }
/^[ \t]*$/ { next }
/^[^ \t]/ { literal = 0 }
literal { next }
/::[ \t]*$/ || /^\.\. *(code-block|sourcecode|doctest|testcode|testoutput|productionlist|literalinclude)/ { literal = 1 }
/^[ \t]*\.\./ || /^[ \t]*:/ || /^[ \t]*>>>/ || /^[ \t]*\.\.\./ || /^[=\-~^*#+`'".]+[ \t]*$/ || /^[ \t]*[|+]/ { next }
{
    line = $0
    sub(/::[ \t]*$/, ":", line)
    gsub(/:[a-zA-Z:]+:`~?/, "", line)        # :role:`text` → text`
    gsub(/<[^>]*>`_*/, "", line)              # `link <target>`_ → link
    gsub(/``/, "", line); gsub(/`_*/, "", line); gsub(/\*\*?/, "", line)
    gsub(/\|[a-zA-Z0-9_-]+\|/, "", line)
    doc = doc " " line
}
END { flush() }
function flush() { gsub(/[ \t]+/, " ", doc); if (length(doc) > 200) print substr(doc, 2); doc = "" }
