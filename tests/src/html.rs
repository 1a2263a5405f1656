//! Reading the page for people (`index.html`) the way a person does: the
//! text they see and copy, and the fingerprints it lists.

/// The text of `html`: tags dropped, the entities the page uses decoded.
pub fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The fingerprints the page lists, in page order: the text of every
/// `code.fp` element (as ssgen writes it, or as Chromium serialises it).
pub fn fingerprints(html: &str) -> Vec<String> {
    html.split("<code class=\"fp\">")
        .skip(1)
        .map(|rest| text(rest.split("</code>").next().unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_fingerprints() {
        let page = "<p>a &amp; <b>b</b> &lt;c&gt;</p><code class=\"fp\"><span>ab</span>cd</code> \
                    <code>x</code><code class=\"fp\"><span>ef</span></code>";
        assert_eq!(text(page), "a & b <c>abcd xef");
        assert_eq!(fingerprints(page), ["abcd", "ef"]);
    }
}
