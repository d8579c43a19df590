// A small syntax highlighter of our own: keywords, strings, comments and numbers for a few
// common languages. It returns DOM nodes (text nodes and <span class="hl-*">), never HTML,
// so code from a message can never become markup.

const WORD = /[A-Za-z_$][\w$]*/y;

function words(list) {
  return new Set(list.split(/\s+/).filter(Boolean));
}

// Each language: ordered [class, sticky regex] rules tried at each position, plus keywords.
const C_COMMENTS = [["com", /\/\/[^\n]*/y], ["com", /\/\*[\s\S]*?(?:\*\/|$)/y]];
const NUMBER = ["num", /(?:0[xX][\da-fA-F_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)n?/y];

const LANGUAGES = {
  python: {
    rules: [["com", /#[^\n]*/y], ["str", /[rbfuRBFU]{0,2}(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$))/y],
      ["str", /[rbfuRBFU]{0,2}(?:"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)/y], NUMBER],
    keywords: words(`False None True and as assert async await break class continue def del elif else except finally for
      from global if import in is lambda nonlocal not or pass raise return try while with yield match case self print len range`),
  },
  js: {
    rules: [...C_COMMENTS, ["str", /`(?:\\[\s\S]|[^`\\])*`?/y], ["str", /"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?/y], NUMBER],
    keywords: words(`async await break case catch class const continue debugger default delete do else export extends false
      finally for from function if import in instanceof let new null of return static super switch this throw true try
      typeof undefined var void while with yield`),
  },
  json: {
    rules: [["str", /"(?:\\.|[^"\\\n])*"?/y], ["num", /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y]],
    keywords: words("true false null"),
  },
  sql: {
    rules: [["com", /--[^\n]*/y], ["com", /\/\*[\s\S]*?(?:\*\/|$)/y], ["str", /'(?:''|[^'])*'?/y], ["str", /"(?:""|[^"])*"?/y], NUMBER],
    keywords: words(`select from where and or not insert into values update set delete create table drop alter add index on
      join left right inner outer full cross group by order having limit offset as distinct union all exists in is null like
      between case when then else end primary key foreign references default returning with asc desc count sum avg min max
      begin commit rollback transaction view`),
    caseless: true,
  },
  bash: {
    rules: [["com", /#[^\n]*/y], ["str", /"(?:\\.|[^"\\])*"?|'[^']*'?/y], ["num", /\$\{[^}\n]*\}?|\$[\w@#?$!*-]/y], NUMBER],
    keywords: words(`if then else elif fi for while until do done case esac in function return local export readonly unset
      echo exit set shift source cd test true false`),
  },
};

const ALIASES = { py: "python", python3: "python", javascript: "js", mjs: "js", ts: "js", typescript: "js", node: "js",
  sh: "bash", shell: "bash", zsh: "bash", console: "bash", postgres: "sql", postgresql: "sql", psql: "sql" };

export function languageOf(name) {
  const key = String(name || "").trim().toLowerCase();
  const found = ALIASES[key] || key;
  return LANGUAGES[found] ? found : null;
}

/** Tokens of `code`: [{type: "kw"|"str"|"com"|"num"|null, text}]. Unknown languages give one plain token. */
export function tokenize(code, language) {
  const lang = LANGUAGES[languageOf(language)];
  if (!lang) return [{ type: null, text: code }];
  const out = [];
  let plain = "";
  const push = (type, text) => {
    if (plain) { out.push({ type: null, text: plain }); plain = ""; }
    out.push({ type, text });
  };
  let i = 0;
  outer: while (i < code.length) {
    for (const [type, re] of lang.rules) {
      re.lastIndex = i;
      const m = re.exec(code);
      if (m && m[0].length) {
        // a number rule must not start inside an identifier (x1, foo2bar)
        if (type === "num" && i > 0 && /[\w$]/.test(code[i - 1])) continue;
        push(type, m[0]);
        i += m[0].length;
        continue outer;
      }
    }
    WORD.lastIndex = i;
    const w = WORD.exec(code);
    if (w) {
      const key = lang.caseless ? w[0].toLowerCase() : w[0];
      if (lang.keywords.has(key)) push("kw", w[0]);
      else plain += w[0];
      i += w[0].length;
      continue;
    }
    plain += code[i];
    i += 1;
  }
  if (plain) out.push({ type: null, text: plain });
  return out;
}

/** A DocumentFragment of text nodes and <span class="hl-…"> for `code` in `language`. */
export function highlight(code, language) {
  const fragment = document.createDocumentFragment();
  for (const { type, text } of tokenize(code, language)) {
    if (!type) { fragment.append(document.createTextNode(text)); continue; }
    const span = document.createElement("span");
    span.className = `hl-${type}`;
    span.textContent = text;
    fragment.append(span);
  }
  return fragment;
}
