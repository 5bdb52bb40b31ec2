//! Safe wrappers over `napi_sys`. An `Env` is only valid during the
//! callback it was given to (Node-API's rule), so it is `Copy` but neither
//! `Send` nor `Sync`: it cannot leave the JS thread. Every failure becomes
//! a `String` error that the caller throws into JS or reports.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::raw::c_void;
use std::ptr;

use crate::napi_sys::*;
use crate::value::Value;

pub type NapiResult<T> = Result<T, String>;

/// Nesting limit when copying JS objects: guards against cycles.
const MAX_DEPTH: usize = 32;

#[derive(Clone, Copy)]
pub struct Env(pub(crate) napi_env);

/// A JS value handle, valid for the current callback scope only.
pub type JsValue = napi_value;

fn check(status: napi_status, what: &str) -> NapiResult<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(format!("{what} failed (napi_status {status})"))
    }
}

fn cstring(s: &str) -> CString {
    // Names we pass are ours; an interior NUL would be a bug: cut there.
    CString::new(s.split('\0').next().unwrap_or("")).unwrap_or_default()
}

impl Env {
    pub fn undefined(self) -> NapiResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: valid env during this callback; `v` is a valid out-pointer.
        check(
            unsafe { napi_get_undefined(self.0, &mut v) },
            "napi_get_undefined",
        )?;
        Ok(v)
    }

    pub fn string(self, s: &str) -> NapiResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: pointer and length describe `s`, valid UTF-8.
        check(
            unsafe { napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len(), &mut v) },
            "napi_create_string_utf8",
        )?;
        Ok(v)
    }

    pub fn set_named(self, object: JsValue, name: &str, value: JsValue) -> NapiResult<()> {
        let name = cstring(name);
        // SAFETY: handles from this scope; NUL-terminated name.
        check(
            unsafe { napi_set_named_property(self.0, object, name.as_ptr(), value) },
            "napi_set_named_property",
        )
    }

    pub fn get_named(self, object: JsValue, name: &str) -> NapiResult<JsValue> {
        let name = cstring(name);
        let mut v = ptr::null_mut();
        // SAFETY: handles from this scope; NUL-terminated name.
        check(
            unsafe { napi_get_named_property(self.0, object, name.as_ptr(), &mut v) },
            "napi_get_named_property",
        )?;
        Ok(v)
    }

    pub fn type_of(self, value: JsValue) -> NapiResult<napi_valuetype> {
        let mut t = 0;
        // SAFETY: handle from this scope.
        check(unsafe { napi_typeof(self.0, value, &mut t) }, "napi_typeof")?;
        Ok(t)
    }

    pub fn is_promise(self, value: JsValue) -> bool {
        let mut b = false;
        // SAFETY: handle from this scope.
        unsafe { napi_is_promise(self.0, value, &mut b) == NAPI_OK && b }
    }

    fn is_array(self, value: JsValue) -> NapiResult<bool> {
        let mut b = false;
        // SAFETY: handle from this scope.
        check(
            unsafe { napi_is_array(self.0, value, &mut b) },
            "napi_is_array",
        )?;
        Ok(b)
    }

    fn string_value(self, value: JsValue) -> NapiResult<String> {
        let mut len = 0usize;
        // SAFETY: a null buffer asks for the length only.
        check(
            unsafe { napi_get_value_string_utf8(self.0, value, ptr::null_mut(), 0, &mut len) },
            "napi_get_value_string_utf8",
        )?;
        let mut buf = vec![0u8; len + 1];
        // SAFETY: `buf` has room for `len` bytes and the NUL Node-API writes.
        check(
            unsafe {
                napi_get_value_string_utf8(
                    self.0,
                    value,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut len,
                )
            },
            "napi_get_value_string_utf8",
        )?;
        buf.truncate(len);
        String::from_utf8(buf).map_err(|_| "string is not valid UTF-8".to_owned())
    }

    /// `String(value)` as JS would write it (used for error messages).
    pub fn display(self, value: JsValue) -> String {
        let mut s = ptr::null_mut();
        // SAFETY: handle from this scope.
        if unsafe { napi_coerce_to_string(self.0, value, &mut s) } != NAPI_OK {
            self.clear_exception();
            return "<unprintable value>".to_owned();
        }
        self.string_value(s)
            .unwrap_or_else(|_| "<unprintable value>".to_owned())
    }

    /// Copies a JS value into Rust.
    pub fn read(self, value: JsValue) -> NapiResult<Value> {
        self.read_depth(value, 0)
    }

    fn read_depth(self, value: JsValue, depth: usize) -> NapiResult<Value> {
        if depth > MAX_DEPTH {
            return Err("value nested too deeply (a cycle?)".to_owned());
        }
        Ok(match self.type_of(value)? {
            NAPI_UNDEFINED => Value::Undefined,
            NAPI_NULL => Value::Null,
            NAPI_BOOLEAN => {
                let mut b = false;
                // SAFETY: the value is a boolean.
                check(
                    unsafe { napi_get_value_bool(self.0, value, &mut b) },
                    "napi_get_value_bool",
                )?;
                Value::Bool(b)
            }
            NAPI_NUMBER => {
                let mut n = 0.0;
                // SAFETY: the value is a number.
                check(
                    unsafe { napi_get_value_double(self.0, value, &mut n) },
                    "napi_get_value_double",
                )?;
                Value::Number(n)
            }
            NAPI_STRING => Value::String(self.string_value(value)?),
            NAPI_OBJECT if self.is_array(value)? => {
                let mut len = 0u32;
                // SAFETY: the value is an array.
                check(
                    unsafe { napi_get_array_length(self.0, value, &mut len) },
                    "napi_get_array_length",
                )?;
                let mut items = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let mut item = ptr::null_mut();
                    // SAFETY: index within the array's length.
                    check(
                        unsafe { napi_get_element(self.0, value, i, &mut item) },
                        "napi_get_element",
                    )?;
                    items.push(self.read_depth(item, depth + 1)?);
                }
                Value::Array(items)
            }
            NAPI_OBJECT => {
                let mut keys = ptr::null_mut();
                // SAFETY: the value is an object.
                check(
                    unsafe { napi_get_property_names(self.0, value, &mut keys) },
                    "napi_get_property_names",
                )?;
                let Value::Array(names) = self.read_depth(keys, depth + 1)? else {
                    return Err("property names are not an array".to_owned());
                };
                let mut members = Vec::with_capacity(names.len());
                for name in names {
                    let Value::String(name) = name else { continue };
                    let member = self.get_named(value, &name)?;
                    members.push((name, self.read_depth(member, depth + 1)?));
                }
                Value::Object(members)
            }
            other => {
                return Err(format!(
                    "cannot pass a JS value of type {other} to the engine"
                ))
            }
        })
    }

    /// The elements of `array`, a `Uint32Array` of at least `n` words,
    /// to write into later in this same callback.
    pub fn u32_array(self, array: JsValue, n: usize) -> NapiResult<U32Array> {
        let (mut kind, mut len, mut data) = (0, 0, ptr::null_mut());
        // SAFETY: valid env and value; the out-pointers are valid, and the
        // array buffer and byte offset are not asked for (null).
        check(
            unsafe {
                napi_get_typedarray_info(
                    self.0,
                    array,
                    &mut kind,
                    &mut len,
                    &mut data,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            },
            "napi_get_typedarray_info",
        )?;
        if kind != NAPI_UINT32_ARRAY || len < n || data.is_null() {
            return Err(format!("expected a Uint32Array of {n} words"));
        }
        Ok(U32Array {
            data: data.cast(),
            len: n,
        })
    }

    /// Builds a JS value from a Rust one.
    pub fn make(self, value: &Value) -> NapiResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY (all arms): valid env, valid out-pointer, inputs owned by `value`.
        match value {
            Value::Undefined => return self.undefined(),
            Value::Null => check(unsafe { napi_get_null(self.0, &mut v) }, "napi_get_null")?,
            Value::Bool(b) => check(
                unsafe { napi_get_boolean(self.0, *b, &mut v) },
                "napi_get_boolean",
            )?,
            Value::Number(n) => check(
                unsafe { napi_create_double(self.0, *n, &mut v) },
                "napi_create_double",
            )?,
            Value::String(s) => return self.string(s),
            Value::Array(items) => {
                check(
                    unsafe { napi_create_array_with_length(self.0, items.len(), &mut v) },
                    "napi_create_array_with_length",
                )?;
                for (i, item) in items.iter().enumerate() {
                    let item = self.make(item)?;
                    check(
                        unsafe { napi_set_element(self.0, v, i as u32, item) },
                        "napi_set_element",
                    )?;
                }
            }
            Value::Object(members) => {
                check(
                    unsafe { napi_create_object(self.0, &mut v) },
                    "napi_create_object",
                )?;
                for (k, m) in members {
                    let m = self.make(m)?;
                    self.set_named(v, k, m)?;
                }
            }
        }
        Ok(v)
    }

    /// Throws a JS `Error` with `message` (ignored if one is already pending).
    pub fn throw(self, message: &str) {
        let msg = cstring(message);
        // SAFETY: NUL-terminated message; a null code is allowed.
        unsafe { napi_throw_error(self.0, ptr::null(), msg.as_ptr()) };
    }

    /// Takes the pending exception, if any, as its `String()` form.
    pub fn take_exception(self) -> Option<String> {
        let mut pending = false;
        // SAFETY: valid env; out-pointer.
        unsafe { napi_is_exception_pending(self.0, &mut pending) };
        if !pending {
            return None;
        }
        let mut e = ptr::null_mut();
        // SAFETY: an exception is pending.
        unsafe { napi_get_and_clear_last_exception(self.0, &mut e) };
        Some(self.display(e))
    }

    fn clear_exception(self) {
        let _ = self.take_exception();
    }

    /// Calls `func(...args)` with `this` undefined; a throw becomes `Err`.
    pub fn call(self, func: JsValue, args: &[JsValue]) -> NapiResult<JsValue> {
        self.call_method(self.undefined()?, func, args)
    }

    /// Calls `func` with `this`; a throw becomes `Err`.
    pub fn call_method(
        self,
        this: JsValue,
        func: JsValue,
        args: &[JsValue],
    ) -> NapiResult<JsValue> {
        let mut result = ptr::null_mut();
        // SAFETY: handles from this scope; argv points at `args.len()` values.
        let status = unsafe {
            napi_call_function(self.0, this, func, args.len(), args.as_ptr(), &mut result)
        };
        if let Some(e) = self.take_exception() {
            return Err(e);
        }
        check(status, "napi_call_function")?;
        Ok(result)
    }

    /// A JS function that runs `cb` with `data` (owned by the caller, who
    /// must keep it alive as long as the function may be called).
    pub fn function(self, name: &str, cb: napi_callback, data: *mut c_void) -> NapiResult<JsValue> {
        let mut f = ptr::null_mut();
        // SAFETY: pointer and length describe `name`; `cb` is an extern fn.
        check(
            unsafe {
                napi_create_function(self.0, name.as_ptr().cast(), name.len(), cb, data, &mut f)
            },
            "napi_create_function",
        )?;
        Ok(f)
    }

    /// Wraps `value` in a JS external; it is dropped when JS collects it.
    pub fn external<T: 'static>(self, value: T) -> NapiResult<JsValue> {
        unsafe extern "C" fn finalize<T>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
            // SAFETY: `data` is the Box we leaked below, finalized once.
            drop(unsafe { Box::from_raw(data.cast::<T>()) });
        }
        let data = Box::into_raw(Box::new(value));
        let mut v = ptr::null_mut();
        // SAFETY: `data` is a valid heap pointer handed over to the external.
        let status = unsafe {
            napi_create_external(
                self.0,
                data.cast(),
                Some(finalize::<T>),
                ptr::null_mut(),
                &mut v,
            )
        };
        if status != NAPI_OK {
            // SAFETY: the external was not created, so we still own `data`.
            drop(unsafe { Box::from_raw(data) });
            return Err(format!(
                "napi_create_external failed (napi_status {status})"
            ));
        }
        Ok(v)
    }

    /// The Rust value inside an external made by `external::<T>`.
    ///
    /// # Safety
    /// `value` must be an external created by `external::<T>` with the same `T`.
    pub unsafe fn external_ref<'a, T>(self, value: JsValue) -> NapiResult<&'a T> {
        if self.type_of(value)? != NAPI_EXTERNAL {
            return Err("expected a handle".to_owned());
        }
        let mut data = ptr::null_mut();
        // SAFETY: `value` is an external (checked above).
        check(
            unsafe { napi_get_value_external(self.0, value, &mut data) },
            "napi_get_value_external",
        )?;
        // SAFETY: the caller promises the external holds a `T`, alive while JS holds it.
        Ok(unsafe { &*data.cast::<T>() })
    }
}

/// The arguments of a JS call into Rust, and its `data` pointer.
pub struct CallInfo {
    pub args: Vec<JsValue>,
    pub data: *mut c_void,
}

/// Runs the body of an exported function: collects its arguments, and
/// turns an `Err` into a thrown JS `Error`.
///
/// # Safety
/// `env` and `info` must be the ones Node-API passed to the callback.
pub unsafe fn callback(
    env: napi_env,
    info: napi_callback_info,
    body: impl FnOnce(Env, CallInfo) -> NapiResult<JsValue>,
) -> napi_value {
    let env = Env(env);
    let mut argc = 8usize;
    let mut argv = [ptr::null_mut(); 8];
    let mut data = ptr::null_mut();
    // SAFETY: argv has room for argc values; the rest are out-pointers.
    let status = unsafe {
        napi_get_cb_info(
            env.0,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    let result = check(status, "napi_get_cb_info").and_then(|()| {
        let args = argv[..argc.min(argv.len())].to_vec();
        body(env, CallInfo { args, data })
    });
    match result {
        Ok(v) => v,
        Err(message) => {
            env.throw(&message);
            ptr::null_mut()
        }
    }
}

impl CallInfo {
    pub fn arg(&self, i: usize, what: &str) -> NapiResult<JsValue> {
        self.args
            .get(i)
            .copied()
            .ok_or_else(|| format!("missing argument {i} ({what})"))
    }

    pub fn function_arg(&self, env: Env, i: usize, what: &str) -> NapiResult<JsValue> {
        let f = self.arg(i, what)?;
        if env.type_of(f)? != NAPI_FUNCTION {
            return Err(format!("argument {i} ({what}) must be a function"));
        }
        Ok(f)
    }
}

/// A `Uint32Array` argument's elements, written through during the
/// callback that got it: the argument keeps the array alive until the
/// callback returns, an array buffer's store never moves, and no JS runs
/// on this thread meanwhile. Not `Send`: it stays on that thread.
pub struct U32Array {
    data: *mut u32,
    len: usize,
}

impl U32Array {
    /// Copies `words` (at most the length asked for) to the front.
    pub fn write(&mut self, words: &[u32]) {
        assert!(
            words.len() <= self.len,
            "more words than the array was checked for"
        );
        // SAFETY: `data` points at >= `len` u32 elements of a live typed
        // array (aligned: its byte offset is a multiple of 4), see above.
        unsafe { ptr::copy_nonoverlapping(words.as_ptr(), self.data, words.len()) };
    }
}
