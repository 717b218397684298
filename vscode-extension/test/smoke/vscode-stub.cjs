// A stand-in for the `vscode` module: enough API for the extension and
// vscode-languageclient to load and activate, recording what they register.
"use strict";

const registered = [];
const messages = [];
const outputs = [];

/** Anything not modelled below: a constructible, callable object whose properties are more of the same. */
function anything(name) {
  const fn = function () {};
  return new Proxy(fn, {
    get(target, prop) {
      if (prop === "prototype") {
        return target.prototype;
      }
      if (prop === Symbol.toPrimitive) {
        return () => 0;
      }
      if (typeof prop === "symbol") {
        return undefined;
      }
      if (prop === "then") {
        return undefined; // not a thenable
      }
      if (!(prop in target)) {
        target[prop] = anything(`${name}.${String(prop)}`);
      }
      return target[prop];
    },
    apply() {
      return anything(`${name}()`);
    },
    construct() {
      return anything(`new ${name}`);
    },
  });
}

class Disposable {
  constructor(fn) {
    this._fn = fn;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose()));
  }
  dispose() {
    if (this._fn) {
      this._fn();
      this._fn = undefined;
    }
  }
}

class EventEmitter {
  constructor() {
    this.listeners = new Set();
    this.event = (listener) => {
      this.listeners.add(listener);
      return new Disposable(() => this.listeners.delete(listener));
    };
  }
  fire(value) {
    [...this.listeners].forEach((l) => l(value));
  }
  dispose() {
    this.listeners.clear();
  }
}

class Uri {
  constructor(scheme, path) {
    this.scheme = scheme;
    this.path = path;
    this.fsPath = path;
  }
  static file(p) {
    return new Uri("file", p);
  }
  static parse(s) {
    const m = /^([a-z-]+):\/\/(.*)$/.exec(s);
    return m ? new Uri(m[1], m[2]) : new Uri("file", s);
  }
  static joinPath(base, ...parts) {
    return new Uri(base.scheme, [base.path, ...parts].join("/"));
  }
  toString() {
    return `${this.scheme}://${this.path}`;
  }
  with() {
    return this;
  }
}

const event = () => () => new Disposable();

let settings = {};

const vscode = {
  Disposable,
  EventEmitter,
  Uri,
  version: "1.82.0",
  env: { appName: "stub", language: "en", machineId: "stub", sessionId: "stub", uiKind: 1 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ViewColumn: { Active: -1, Beside: -2, One: 1, Two: 2 },
  commands: {
    registerCommand(id) {
      registered.push(id);
      return new Disposable(() => {});
    },
    executeCommand: async () => undefined,
    getCommands: async () => registered.slice(),
  },
  window: {
    createOutputChannel(name) {
      const lines = [];
      const ch = { name, lines, append: (t) => lines.push(t), appendLine: (t) => lines.push(t), clear() {}, show() {}, hide() {}, dispose() {}, replace() {} };
      outputs.push(ch);
      return ch;
    },
    createStatusBarItem: () => ({ show() {}, hide() {}, dispose() {}, text: "", tooltip: "", command: undefined, name: "" }),
    showErrorMessage: async (m) => {
      messages.push({ level: "error", text: m });
      return undefined;
    },
    showWarningMessage: async (m) => {
      messages.push({ level: "warning", text: m });
      return undefined;
    },
    showInformationMessage: async (m) => {
      messages.push({ level: "info", text: m });
      return undefined;
    },
    onDidChangeActiveTextEditor: event(),
    onDidChangeVisibleTextEditors: event(),
    visibleTextEditors: [],
    activeTextEditor: undefined,
    createWebviewPanel: () => anything("WebviewPanel"),
  },
  workspace: {
    workspaceFolders: undefined,
    textDocuments: [],
    getConfiguration: (section) => ({
      get: (key, dflt) => {
        const full = section ? `${section}.${key}` : key;
        return full in settings ? settings[full] : dflt;
      },
      has: () => false,
      inspect: () => undefined,
      update: async () => undefined,
    }),
    onDidChangeConfiguration: event(),
    onDidChangeTextDocument: event(),
    onDidOpenTextDocument: event(),
    onDidCloseTextDocument: event(),
    onDidSaveTextDocument: event(),
    onWillSaveTextDocument: event(),
    createFileSystemWatcher: () => ({ onDidCreate: event(), onDidChange: event(), onDidDelete: event(), dispose() {} }),
    fs: anything("workspace.fs"),
  },
  languages: {
    onDidChangeDiagnostics: event(),
    createDiagnosticCollection: () => anything("DiagnosticCollection"),
  },
  extensions: { getExtension: () => undefined, all: [] },
};

module.exports = new Proxy(vscode, {
  get(target, prop) {
    if (prop === "__stub") {
      return { registered, messages, outputs, setSettings: (s) => (settings = s) };
    }
    if (!(prop in target) && typeof prop === "string") {
      target[prop] = anything(prop);
    }
    return target[prop];
  },
});
