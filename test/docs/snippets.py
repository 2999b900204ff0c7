#!/usr/bin/env python3
"""Compiles (and runs) every C++ code block of corio's Markdown documents.

    snippets.py check  [options] DOC.md...   compile every ```cpp block; run those with a main()
    snippets.py list   DOC.md...             print every block and what would be done with it
    snippets.py files  OUTDIR DOC.md...      write the blocks annotated with file=PATH under OUTDIR

A block is a fenced code block (``` or ~~~, indented or not: list items have indented fences).
An HTML comment on the line right before the fence says how to treat it:

    <!-- snippet: prelude=net wrap=task -->

Options (space separated; values may be "quoted"):
  prelude=A,B       #include test/docs/prelude/A.hpp, B.hpp before the block (declarations and
                    using-declarations that a fragment needs); unknown names fail
  wrap=task         the block is a sequence of statements: it becomes the body of a
                    corio::task<> coroutine (leading #include lines stay outside)
  compile-only      do not run a block that defines main(); needs reason="..."
  requires=tls      the block needs corio::tls; reported as skipped (never silently) when corio
                    was built without it
  expect="TEXT"     a program's standard output must contain TEXT
  file=PATH         (non-C++ blocks) the block is the file PATH of a consumer project, written by
                    the `files` command and built by test/integration/consumer.sh
  skip reason="..." (non-C++ blocks only) not exercised; a C++ block cannot be skipped

Rules: every C++ block (cpp, c++, cxx) is compiled as its own translation unit; one that defines
`int main(` is linked and run with a timeout and must exit 0, unless compile-only. Blocks in
build-file languages (ini, meson, cmake, make, makefile) must carry file=... or skip. Other
languages (sh, text, ...) are prose and are left alone. Any unknown option, prelude or a
malformed comment fails the check, so nothing is skipped by accident.
"""

import argparse
import concurrent.futures
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

CPP_LANGS = {"cpp", "c++", "cxx"}
BUILD_LANGS = {"ini", "meson", "cmake", "make", "makefile"}
KNOWN_OPTIONS = {"prelude", "wrap", "compile-only", "reason", "requires", "expect", "file", "skip"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
ANNOTATION = re.compile(r"^\s*<!--\s*snippet:(?P<opts>.*?)-->\s*$")
MAIN = re.compile(r"\bint\s+main\s*\(")
HERE = os.path.dirname(os.path.abspath(__file__))


class DocError(Exception):
    pass


class Block:
    def __init__(self, doc, line, lang, text, opts):
        self.doc = doc        # path of the Markdown file
        self.line = line      # 1-based line of the first line of content
        self.lang = lang
        self.text = text
        self.opts = opts

    @property
    def where(self):
        return f"{self.doc}:{self.line - 1}"

    def is_cpp(self):
        return self.lang in CPP_LANGS

    def has_main(self):
        return bool(MAIN.search(self.text))


def parse_options(text, where):
    try:
        tokens = shlex.split(text)
    except ValueError as e:
        raise DocError(f"{where}: malformed snippet comment: {e}")
    opts = {}
    for tok in tokens:
        key, eq, value = tok.partition("=")
        if key not in KNOWN_OPTIONS:
            raise DocError(f"{where}: unknown snippet option '{key}' (known: "
                           f"{', '.join(sorted(KNOWN_OPTIONS))})")
        opts[key] = value if eq else True
    return opts


def parse_doc(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    i = 0
    pending = None  # (options, line number) of an annotation on the previous line
    while i < len(lines):
        line = lines[i]
        m = ANNOTATION.match(line)
        if m:
            pending = (parse_options(m.group("opts"), f"{path}:{i + 1}"), i + 1)
            i += 1
            continue
        if line.lstrip().startswith("<!--") and "snippet" in line:
            raise DocError(f"{path}:{i + 1}: a snippet comment must be one line: "
                           "<!-- snippet: ... -->")
        f = FENCE.match(line)
        if not f:
            if pending and line.strip():
                raise DocError(f"{path}:{pending[1]}: snippet comment not followed by a code block")
            i += 1
            continue
        indent, fence, info = f.group("indent"), f.group("fence"), f.group("info").strip()
        lang = info.split()[0].lower() if info else ""
        body = []
        j = i + 1
        closing = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        while j < len(lines) and not closing.match(lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        if j == len(lines):
            raise DocError(f"{path}:{i + 1}: code block never closed")
        opts = pending[0] if pending else {}
        blocks.append(Block(path, i + 2, lang, "\n".join(body) + "\n", opts))
        pending = None
        i = j + 1
    if pending:
        raise DocError(f"{path}:{pending[1]}: snippet comment not followed by a code block")
    return blocks


def validate(block, preludes_dir):
    """Raises DocError for an annotation that does not fit its block."""
    o = block.opts
    if block.is_cpp():
        if "skip" in o:
            raise DocError(f"{block.where}: a C++ block cannot be skipped; give it a prelude, "
                           "wrap=task or compile-only")
        if "file" in o:
            raise DocError(f"{block.where}: file= is for build files, not C++ blocks")
        if "compile-only" in o and not o.get("reason"):
            raise DocError(f"{block.where}: compile-only needs reason=\"...\"")
        if "compile-only" in o and not block.has_main():
            raise DocError(f"{block.where}: compile-only on a block without main() (it is "
                           "compiled only anyway)")
        if o.get("wrap") not in (None, "task"):
            raise DocError(f"{block.where}: unknown wrap={o['wrap']} (known: task)")
        if o.get("wrap") and block.has_main():
            raise DocError(f"{block.where}: wrap=task on a block that defines main()")
        if o.get("requires") not in (None, "tls"):
            raise DocError(f"{block.where}: unknown requires={o['requires']} (known: tls)")
        if "expect" in o and (not block.has_main() or "compile-only" in o):
            raise DocError(f"{block.where}: expect= on a block that is not run")
        for p in preludes(block):
            if not os.path.isfile(os.path.join(preludes_dir, p + ".hpp")):
                raise DocError(f"{block.where}: unknown prelude '{p}' (no "
                               f"{os.path.relpath(os.path.join(preludes_dir, p + '.hpp'))})")
    else:
        cpp_only = {"prelude", "wrap", "compile-only", "requires", "expect"} & set(o)
        if cpp_only:
            raise DocError(f"{block.where}: {', '.join(sorted(cpp_only))} on a "
                           f"'{block.lang or 'plain'}' block")
        if "skip" in o and not o.get("reason"):
            raise DocError(f"{block.where}: skip needs reason=\"...\"")
        if block.lang in BUILD_LANGS and "file" not in o and "skip" not in o:
            raise DocError(f"{block.where}: a '{block.lang}' block must be exercised: annotate it "
                           "with <!-- snippet: file=PATH --> (or skip reason=\"...\")")


def preludes(block):
    p = block.opts.get("prelude")
    return [x for x in p.split(",") if x] if isinstance(p, str) else []


def translation_unit(block, source_root):
    """The source of the block's translation unit; #line keeps diagnostics in the document."""
    doc = os.path.relpath(os.path.abspath(block.doc), source_root)
    out = [f"// {block.where}, generated by test/docs/snippets.py"]
    out += [f'#include "prelude/{p}.hpp"' for p in preludes(block)]
    lines = block.text.rstrip("\n").split("\n")
    if block.opts.get("wrap") == "task":
        n = 0
        while n < len(lines) and (lines[n].startswith("#include") or not lines[n].strip()):
            n += 1
        if n:
            out.append(f'#line {block.line} "{doc}"')
            out += lines[:n]
        out.append("corio::task<> corio_snippet_body() {")
        out.append(f'#line {block.line + n} "{doc}"')
        out += lines[n:]
        out.append("  co_return;")
        out.append("}")
    else:
        out.append(f'#line {block.line} "{doc}"')
        out += lines
    return "\n".join(out) + "\n"


def check(args):
    source_root = os.path.abspath(args.source_root)
    preludes_dir = os.path.join(HERE, "prelude")
    docs = [os.path.abspath(d) for d in args.docs]
    args.lib = os.path.abspath(args.lib)
    os.chdir(source_root)  # documents are named relative to it in the messages
    blocks = []
    for doc in docs:
        rel = os.path.relpath(doc)
        blocks += parse_doc(doc if rel.startswith("..") else rel)
    for b in blocks:
        validate(b, preludes_dir)
    cpp = [b for b in blocks if b.is_cpp()]
    if not cpp:
        raise DocError("no C++ blocks found: wrong documents?")

    cxx = shlex.split(args.cxx)
    is_clang = "clang" in subprocess.run(cxx + ["--version"], capture_output=True,
                                         text=True).stdout
    sanitize = [] if args.sanitize in ("", "none") else [f"-fsanitize={args.sanitize}"]
    if sanitize and is_clang and "undefined" in args.sanitize:
        sanitize.append("-fno-sanitize=vptr,function")  # as corio's own meson.build does
    cflags = (["-std=c++20", "-O0", "-g0", "-foptimize-sibling-calls", "-Wall", "-Wextra",
               "-Werror", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
               "-Wno-unused-parameter", "-Wno-unused-function", "-Wno-unused-local-typedefs",
               "-I", os.path.join(source_root, "include"), "-I", HERE] + sanitize)
    if not is_clang:
        # #line makes GCC take the snippet for a header, where types without linkage (lambdas)
        # in coroutine frames are warned about
        cflags.append("-Wno-subobject-linkage")
    pkgs = ["liburing", "fmt"] + (["openssl"] if args.tls else [])
    libs = [args.lib] + shlex.split(
        subprocess.run(["pkg-config", "--libs"] + pkgs, check=True, capture_output=True,
                       text=True).stdout) + ["-pthread"] + sanitize

    work = tempfile.mkdtemp(prefix="corio-snippets-")
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")

    def one(index, b):
        tag = f"{b.where} ({b.lang})"
        if b.opts.get("requires") == "tls" and not args.tls:
            return ("skip", tag, "corio was built without tls (Meson option tls)")
        name = os.path.join(work, f"block{index:03d}")
        with open(name + ".cpp", "w", encoding="utf-8") as f:
            f.write(translation_unit(b, source_root))
        run = b.has_main() and "compile-only" not in b.opts
        cmd = cxx + cflags + ["-c", name + ".cpp", "-o", name + ".o"]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=source_root)
        if r.returncode != 0:
            return ("fail", tag, "does not compile:\n" + r.stdout + r.stderr)
        if not run:
            return ("compiled", tag, "")
        r = subprocess.run(cxx + [name + ".o", "-o", name] + libs, capture_output=True, text=True)
        if r.returncode != 0:
            return ("fail", tag, "does not link:\n" + r.stdout + r.stderr)
        rundir = os.path.join(work, f"run{index:03d}")
        os.mkdir(rundir)  # the program's working directory: files it creates go away with it
        try:
            r = subprocess.run([name], capture_output=True, text=True, timeout=args.timeout,
                               cwd=rundir, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
                else (e.stdout or "")
            return ("fail", tag, f"still running after {args.timeout} s; output so far:\n{out}")
        if r.returncode != 0:
            return ("fail", tag, f"exited with status {r.returncode}:\n" + r.stdout + r.stderr)
        want = b.opts.get("expect")
        if isinstance(want, str) and want not in r.stdout:
            return ("fail", tag, f"output lacks '{want}':\n" + r.stdout + r.stderr)
        return ("ran", tag, r.stdout + r.stderr if args.show_output else "")

    counts = {"compiled": 0, "ran": 0, "skip": 0, "fail": 0}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda ib: one(*ib), enumerate(cpp)))
        for status, tag, detail in results:
            counts[status] += 1
            label = {"compiled": "ok (compiled)", "ran": "ok (compiled and ran)",
                     "skip": "SKIP", "fail": "FAIL"}[status]
            print(f"{label}: {tag}" + (f": {detail}" if status == "skip" else ""))
            if status == "ran" and detail:
                print("    | " + detail.rstrip().replace("\n", "\n    | "))
            if status == "fail":
                lines = detail.rstrip().split("\n")
                if len(lines) > 60:
                    lines = lines[:60] + [f"... ({len(lines) - 60} more lines)"]
                print("    " + "\n    ".join(lines))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    others = [b for b in blocks if not b.is_cpp() and ("file" in b.opts or "skip" in b.opts)]
    for b in others:
        what = f"file {b.opts['file']} (built by the consumer test)" if "file" in b.opts \
            else f"skipped: {b.opts['reason']}"
        print(f"note: {b.where} ({b.lang}): {what}")
    print(f"{len(cpp)} C++ blocks: {counts['ran']} compiled and ran, {counts['compiled']} compiled "
          f"only, {counts['skip']} skipped (not built), {counts['fail']} failed")
    return 1 if counts["fail"] else 0


def list_blocks(args):
    preludes_dir = os.path.join(HERE, "prelude")
    for doc in args.docs:
        for b in parse_doc(doc):
            validate(b, preludes_dir)
            if b.is_cpp():
                what = "run" if b.has_main() and "compile-only" not in b.opts else "compile"
            elif "file" in b.opts:
                what = f"file {b.opts['file']}"
            elif "skip" in b.opts:
                what = "skip"
            else:
                what = "prose"
            print(f"{b.where}\t{b.lang or '-'}\t{what}\t{' '.join(sorted(b.opts))}")
    return 0


def write_files(args):
    preludes_dir = os.path.join(HERE, "prelude")
    written = 0
    for doc in args.docs:
        for b in parse_doc(doc):
            validate(b, preludes_dir)
            if "file" not in b.opts:
                continue
            rel = os.path.normpath(b.opts["file"])
            if rel.startswith("..") or os.path.isabs(rel):
                raise DocError(f"{b.where}: file={rel} must stay inside the output directory")
            path = os.path.join(args.outdir, rel)
            if os.path.exists(path):
                raise DocError(f"{b.where}: file={rel} is given by two blocks")
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(b.text)
            print(f"{b.where} -> {rel}")
            written += 1
    if not written:
        raise DocError("no block carries file=...")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--source-root", required=True)
    c.add_argument("--lib", required=True, help="the built libcorio.a (or .so)")
    c.add_argument("--cxx", default=os.environ.get("CXX", "c++"))
    c.add_argument("--tls", type=int, default=0, help="1 if corio was built with tls")
    c.add_argument("--sanitize", default="none", help="the build's b_sanitize")
    c.add_argument("--timeout", type=int, default=30, help="seconds per program")
    c.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    c.add_argument("--keep", action="store_true", help="keep the generated sources")
    c.add_argument("--show-output", action="store_true", help="print what the programs printed")
    c.add_argument("docs", nargs="+")
    lst = sub.add_parser("list")
    lst.add_argument("docs", nargs="+")
    fl = sub.add_parser("files")
    fl.add_argument("outdir")
    fl.add_argument("docs", nargs="+")
    args = p.parse_args()
    try:
        return {"check": check, "list": list_blocks, "files": write_files}[args.cmd](args)
    except DocError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
