/** Printer and group names: letters, digits, `_`, `.`, `-`, as in a URL path or a DNS label. */
export const PRINTER_NAME = /^[A-Za-z0-9][\w.-]{0,31}$/
